"""Training objectives, by name. ``adversarial`` (hinge loss with the base's discriminator, for
class extension) plugs in here as another ``Objective`` subclass."""
from __future__ import annotations

from ...errors import ConfigError
from .base import Objective
from .glo import GloObjective, latent_spread

OBJECTIVES: dict[str, type[Objective]] = {GloObjective.name: GloObjective}


def objective_class(name: str) -> type[Objective]:
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r} (available: {', '.join(sorted(OBJECTIVES))})")
    return OBJECTIVES[name]


__all__ = ["OBJECTIVES", "GloObjective", "Objective", "latent_spread", "objective_class"]
