"""Differentiable augmentation of what the adversarial objective's discriminator sees, after the
DiffAugment paper (Zhao et al., NeurIPS 2020).

The same transforms, each with its own random draw per image, are applied to real and generated
images before every discriminator call, in the discriminator's steps and in the generator's: the
discriminator never sees an unaugmented image, so it cannot memorise the few real ones, and the
generator is not pushed to make augmented-looking images. Every transform is a differentiable
function of the pixels, so the generator's gradient flows through it. Transforms, in this order:

- ``color``: add a brightness in [−0.5, 0.5]; scale each pixel's deviation from its mean over the
  channels by a saturation in [0, 2]; scale each pixel's deviation from the image's mean by a
  contrast in [0.5, 1.5];
- ``translation``: shift by a whole number of pixels within ±1/8 of the height and of the width,
  filling with zeros;
- ``cutout``: set a square of half the height and half the width to zero, its centre anywhere in
  the image (clipped at the borders).

The random values are drawn separately (:meth:`Augmentation.draw`) from the run's generator, so a
run is the same whatever process draws them and a resumed run continues the same stream.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError, option

TRANSFORMS = ("color", "translation", "cutout")
ON, OFF = "on", "off"
TRANSLATION_RATIO, CUTOUT_RATIO = 1 / 8, 1 / 2


def parse_policy(text: str) -> tuple[str, ...]:
    """``--augment``'s transforms: ``off`` → none, ``on`` → all three, else a comma-separated list
    of them (applied in ``TRANSFORMS`` order); anything else is a ``ConfigError``."""
    if text == OFF:
        return ()
    if text == ON:
        return TRANSFORMS
    names = {part.strip() for part in text.split(",")}
    unknown = sorted(names - set(TRANSFORMS))
    if unknown or not text.strip():
        raise ConfigError(f"{option('augment')} takes on, off or a comma-separated list of {', '.join(TRANSFORMS)}; "
                          f"got {text!r}")
    return tuple(t for t in TRANSFORMS if t in names)


class Augmentation:
    """The transforms of one ``--augment`` policy (none: the identity)."""

    def __init__(self, transforms: tuple[str, ...]) -> None:
        self.transforms = transforms

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def draw(self, count: int, size: tuple[int, int], rng: torch.Generator) -> dict[str, torch.Tensor]:
        """Random values for ``count`` images of ``size`` (height, width): one row per image."""
        device = rng.device
        params: dict[str, torch.Tensor] = {}
        if "color" in self.transforms:
            u = torch.rand(count, 3, generator=rng, device=device)
            params["color"] = torch.stack([u[:, 0] - 0.5, 2 * u[:, 1], u[:, 2] + 0.5], 1)
        if "translation" in self.transforms:
            reach = torch.tensor([round(s * TRANSLATION_RATIO) for s in size], device=device)
            params["translation"] = (torch.rand(count, 2, generator=rng, device=device) * (2 * reach + 1)).floor().long() - reach
        if "cutout" in self.transforms:
            params["cutout"] = (torch.rand(count, 2, generator=rng, device=device)
                                * torch.tensor(size, device=device)).floor().long()
        return params

    def __call__(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """``x`` (B, C, H, W) with each image transformed by its row of ``params``."""
        if "color" in params:
            x = color(x, *params["color"].to(x.dtype).unbind(1))
        if "translation" in params:
            x = translate(x, params["translation"])
        if "cutout" in params:
            x = cutout(x, params["cutout"])
        return x


def color(x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """Per image: + brightness, then saturation and contrast about the channel and image means."""
    def per_image(v: torch.Tensor) -> torch.Tensor:
        return v.view(-1, 1, 1, 1)

    x = x + per_image(brightness)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * per_image(saturation) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * per_image(contrast) + mean


def translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each image moved by its (down, right) ``shift`` in pixels; uncovered pixels are 0."""
    b, _, h, w = x.shape
    pad_h, pad_w = int(shift[:, 0].abs().max()), int(shift[:, 1].abs().max())
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    rows = torch.arange(h, device=x.device) + pad_h - shift[:, :1]  # (B, H)
    cols = torch.arange(w, device=x.device) + pad_w - shift[:, 1:]  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Each image with a zeroed square of half its height and width around its (row, column) ``centre``."""
    h, w = x.shape[-2:]
    size = torch.tensor([round(h * CUTOUT_RATIO), round(w * CUTOUT_RATIO)], device=x.device)
    top = centre - size // 2  # (B, 2)
    rows = torch.arange(h, device=x.device) - top[:, :1]
    cols = torch.arange(w, device=x.device) - top[:, 1:]
    inside = ((rows >= 0) & (rows < size[0]))[:, :, None] & ((cols >= 0) & (cols < size[1]))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)
