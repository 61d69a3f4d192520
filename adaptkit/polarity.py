"""Polarity: are the training images light on dark, like the base's own samples, or the opposite?

The embedded ``digits32`` draws white strokes on black; most drawings (Omniglot, scans, sketches)
are black on white. Trained on those as they are, the adapter would have to turn every pixel
around, and ends with blank samples. ``fit --invert auto`` compares the images' tone with the
base's samples and trains on the images inverted when the two are opposite.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .bases.base import Base
from .sample import sample_images

INVERT_CHOICES = ("auto", "yes", "no")
BASE_SAMPLES = 16
"""Samples of the base whose tone is measured (few: a large base is slow on a CPU)."""
CLEAR_LEVEL = 0.5
"""A background counts as light or dark when its median level is at least this far from mid-grey
(0 in [-1, 1])."""


@dataclass(frozen=True)
class Tone:
    """The median over images of the background level (the mean of each image's outer ring of
    pixels, 1/16 of its side wide) and of the mean level, in [-1, 1] (channels averaged)."""

    background: float
    mean: float

    def describe(self) -> str:
        if abs(self.background) < CLEAR_LEVEL:
            return f"on a mid-grey background ({self.background:+.2f})"
        side = "dark on light" if self.background > 0 else "light on dark"
        return f"{side} (background {self.background:+.2f}, mean {self.mean:+.2f})"


def tone(images: torch.Tensor) -> Tone:
    """The ``Tone`` of images (N, C, H, W) in [-1, 1]."""
    gray = images.detach().float().cpu().mean(1)
    ring = max(1, gray.shape[-1] // 16)
    inner = torch.zeros_like(gray[0], dtype=torch.bool)
    inner[ring:-ring, ring:-ring] = True
    background = gray[:, ~inner].mean(1)
    return Tone(float(background.median()), float(gray.flatten(1).mean(1).median()))


@dataclass(frozen=True)
class PolarityCheck:
    """The tone of the training images and of the base's samples."""

    data: Tone
    base: Tone

    @property
    def opposite(self) -> bool:
        """Both backgrounds are clearly light or dark, on opposite sides, and so are the mean levels."""
        d, b = self.data, self.base
        clear = abs(d.background) >= CLEAR_LEVEL and abs(b.background) >= CLEAR_LEVEL
        return clear and d.background * b.background < 0 and d.mean * b.mean < 0


def check_polarity(images: torch.Tensor, base: Base, seed: int = 0) -> PolarityCheck:
    """Compare the tone of ``images`` with that of ``BASE_SAMPLES`` samples of ``base`` (at its own
    truncation, random classes; ``seed`` fixes them and leaves torch's global generator alone)."""
    samples = sample_images(base, BASE_SAMPLES, seed=seed, batch_size=BASE_SAMPLES)
    return PolarityCheck(tone(images), tone(samples))


def decide_inversion(choice: str, check: PolarityCheck, base_id: str) -> tuple[bool, str | None]:
    """Whether to train on the images inverted (``choice``: auto/yes/no), and the one line to say
    about it (None when there is nothing to say)."""
    found = f"the training images are {check.data.describe()}; base {base_id}'s samples are {check.base.describe()}"
    if choice == "auto":
        if check.opposite:
            return True, f"{found}: training on the images inverted (--invert no keeps them as they are)"
        return False, None
    if choice == "no" and check.opposite:
        return False, (f"[yellow]warning:[/] {found}: the adapter has to invert every pixel and will likely "
                       "fail (blank samples); --invert yes (or auto) trains on the images inverted")
    if choice == "yes" and not check.opposite:
        return True, f"[yellow]warning:[/] --invert yes, although {found} (no opposite polarity found)"
    return choice == "yes", None
