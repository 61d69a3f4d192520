"""Training objectives, by name: ``glo`` (supervised, learned latents) and ``adversarial`` (hinge
loss with the base's discriminator, for class extension)."""
from __future__ import annotations

from ...errors import ConfigError
from .adversarial import AdversarialObjective, hinge_d_loss, hinge_g_loss
from .base import Objective
from .glo import GloObjective, latent_spread

OBJECTIVES: dict[str, type[Objective]] = {c.name: c for c in (GloObjective, AdversarialObjective)}


def objective_class(name: str) -> type[Objective]:
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r} (available: {', '.join(sorted(OBJECTIVES))})")
    return OBJECTIVES[name]


__all__ = ["OBJECTIVES", "AdversarialObjective", "GloObjective", "hinge_d_loss", "hinge_g_loss", "Objective", "latent_spread", "objective_class"]
