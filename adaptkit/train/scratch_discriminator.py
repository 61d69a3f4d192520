"""A discriminator trained from scratch, for adversarial training of bases that ship only a
generator (``--discriminator scratch``; most released GAN checkpoints, e.g. ``digiface64``).

The DCGAN discriminator (Radford et al. 2016) with spectral normalisation on every layer (Miyato
et al. 2018), as the few-shot GAN papers train one when none is pretrained (DiffAugment, Zhao et
al. 2020, trains theirs from scratch on 100 images): 4×4 stride-2 convolutions with LeakyReLU(0.2)
halving the image down to at most 4×4 pixels, widths 64, 128, … up to 512, then a linear layer to
one logit; on a class-conditional base, plus the projection term ⟨embed(y), Σ features⟩ (Miyato &
Koyama 2018), so ``extend_projection`` and FreezeD's block stack work as on the base's own.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

MAX_WIDTH = 512


class ScratchDiscriminator(nn.Module):
    """``forward(x)`` (or ``forward(x, y)`` with ``num_classes``) maps (B, channels, resolution,
    resolution) images in [-1, 1] to (B,) logits."""

    def __init__(self, resolution: int, channels: int, num_classes: int | None = None, width: int = 64) -> None:
        super().__init__()
        depth = max(1, math.ceil(math.log2(resolution / 4)))
        widths = [min(width * 2**i, MAX_WIDTH) for i in range(depth)]
        self.blocks = nn.Sequential(*(
            nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2))
            for cin, cout in zip([channels, *widths[:-1]], widths)))
        side = resolution
        for _ in range(depth):
            side = side // 2
        self.linear = spectral_norm(nn.Linear(widths[-1] * side * side, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, widths[-1])) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(x)
        out = self.linear(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass class ids")
            out = out + (self.embed(y) * h.sum((2, 3))).sum(1)
        return out


def scratch_discriminator(resolution: int, channels: int, num_classes: int | None, seed: int,
                          device: torch.device) -> ScratchDiscriminator:
    """A new :class:`ScratchDiscriminator` whose initial weights depend only on ``seed`` (every
    process of a data-parallel run builds the same one; the global random state is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ScratchDiscriminator(resolution, channels, num_classes).to(device)
