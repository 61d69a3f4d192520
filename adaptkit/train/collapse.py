"""The collapse guard: fit watches a fixed batch of samples and warns once when they stop varying
(at two checks in a row)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..bases.base import Base
from ..sample import generate_images, seeded

GUARD_SAMPLES = 16
COLLAPSE_RATIO = 0.2
"""Collapse: the samples' diversity fell below this fraction of the unadapted base's."""
BLANK_STD = 0.02
"""A sample whose pixels vary less than this (std, images in [-1, 1]) is blank."""


def diversity(images: torch.Tensor) -> tuple[float, float]:
    """(the mean over pixels of the per-pixel std across the images, the fraction of blank images)."""
    spread = images.float().std(dim=0).mean().item()
    blank = (images.float().flatten(1).std(dim=1) < BLANK_STD).float().mean().item()
    return spread, blank


@dataclass
class CollapseGuard:
    """Scores ``GUARD_SAMPLES`` fixed latents (seeded, the base's truncation; classes cycling
    through the training images' labels) at chosen steps. ``history`` holds
    ``{"step", "diversity", "blank"}`` rows, the first being the unadapted base's at step 0."""

    base: Base
    z: torch.Tensor
    y: torch.Tensor | None
    history: list[dict[str, float]] = field(default_factory=list)
    warning: str | None = None

    @classmethod
    def create(cls, base: Base, labels: torch.Tensor | None, seed: int) -> "CollapseGuard":
        z = base.sample_latents(GUARD_SAMPLES, generator=seeded(seed + 3))
        y = None if labels is None else labels.cpu()[torch.arange(GUARD_SAMPLES) % len(labels)]
        return cls(base, z, y)

    def measure(self, step: int) -> None:
        spread, blank = diversity(generate_images(self.base, self.z, self.y))
        self.history.append({"step": step, "diversity": round(spread, 5), "blank": round(blank, 4)})

    def collapsed(self, row: dict[str, float]) -> bool:
        return row["diversity"] < COLLAPSE_RATIO * self.history[0]["diversity"] or row["blank"] > 0.5

    def check(self, step: int, hint: str) -> str | None:
        """Measure at ``step``; the first time the samples look collapsed at two checks in a row (a
        dip that recovers is common in the first steps), return the warning (with ``hint``, the
        settings to try)."""
        self.measure(step)
        if self.warning is not None or len(self.history) < 3:
            return None
        now = self.history[-1]
        if not (self.collapsed(now) and self.collapsed(self.history[-2])):
            return None
        start = self.history[0]
        what = (f"{now['blank']:.0%} of them are blank" if now["blank"] > 0.5 else
                f"their diversity fell to {now['diversity']:.3f} from the base's {start['diversity']:.3f}")
        self.warning = f"samples collapsed by step {step}: {what}. {hint}"
        return self.warning

    def state(self) -> dict[str, Any]:
        return {"history": self.history, "warning": self.warning}

    def restore(self, state: dict[str, Any]) -> None:
        self.history, self.warning = list(state["history"]), state["warning"]
