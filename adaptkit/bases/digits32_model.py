"""Digits32: a small class-conditional 32x32 grayscale GAN (BigGAN/SNGAN-projection style).

The generator is the embedded default base that adapters are trained on; the discriminator is
shipped alongside so that adapters can be trained adversarially. Both are plain ``torch.nn``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without affine parameters, followed by a per-class scale and shift.

    The scale and shift are two separate ``nn.Embedding`` tables, ``gamma`` (init 1) and ``beta``
    (init 0), so that class-extension adapters can hook the lookups.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class GeneratorBlock(nn.Module):
    """Residual up-sampling block: CBN-ReLU-up-conv3x3-CBN-ReLU-conv3x3, 1x1 conv shortcut."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_channels, num_classes)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(out_channels, num_classes)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Digits32Generator(nn.Module):
    """Class-conditional generator: ``forward(z, y)`` maps (B, latent_dim) and (B,) class ids to
    (B, 1, 32, 32) images in [-1, 1].

    Widths are ``ch * m`` for ``m`` in ``channel_mult``: the first entry is the 4x4 width, the
    others are the outputs of the three up-sampling blocks (8x8, 16x16, 32x32).
    """

    resolution = 32
    channels = 1

    def __init__(
        self, latent_dim: int = 64, num_classes: int = 8, ch: int = 24,
        channel_mult: Sequence[int] = (4, 4, 2, 1),
    ) -> None:
        super().__init__()
        if len(channel_mult) != 4:
            raise ValueError("channel_mult needs 4 entries (4x4 width and three block outputs)")
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        widths = [ch * m for m in channel_mult]
        self.linear = nn.Linear(latent_dim, 4 * 4 * widths[0])
        self.blocks = nn.ModuleList(
            GeneratorBlock(cin, cout, num_classes) for cin, cout in zip(widths[:-1], widths[1:])
        )
        self.bn = nn.BatchNorm2d(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], self.channels, 3, padding=1)
        _init_weights(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.conv_out(F.relu(self.bn(h))))


class DiscriminatorBlock(nn.Module):
    """Spectral-norm residual block, optionally average-pooling by 2.

    ``preactivation=False`` is the SNGAN "optimized" first block that reads raw images.
    """

    def __init__(
        self, in_channels: int, out_channels: int, downsample: bool = True,
        preactivation: bool = True,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.preactivation = preactivation
        self.conv1 = spectral_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = (
            spectral_norm(nn.Conv2d(in_channels, out_channels, 1))
            if downsample or in_channels != out_channels else None
        )

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        if self.preactivation:
            return h + self._pool(self.shortcut(x))
        return h + self.shortcut(self._pool(x))


class Digits32Discriminator(nn.Module):
    """Projection discriminator: ``forward(x, y)`` maps (B, 1, 32, 32) images and (B,) class ids
    to (B,) logits, ``linear(h) + sum(embed(y) * h)`` over globally sum-pooled features ``h``.

    Widths are ``ch * m`` for ``m`` in ``channel_mult``; each block but the last halves the
    resolution (32 -> 16 -> 8 -> 4).
    """

    def __init__(
        self, num_classes: int = 8, ch: int = 24, channel_mult: Sequence[int] = (1, 2, 4, 4),
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = [ch * m for m in channel_mult]
        blocks = [DiscriminatorBlock(1, widths[0], preactivation=False)]
        blocks += [
            DiscriminatorBlock(cin, cout, downsample=i < len(widths) - 2)
            for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:]))
        ]
        self.blocks = nn.Sequential(*blocks)
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, widths[-1]))
        _init_weights(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


def _trainable_weight(module: nn.Module) -> torch.Tensor:
    """The weight a module trains: the un-normalised one under spectral norm."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def _init_weights(module: nn.Module) -> None:
    """Xavier-uniform convolutions, linears and projection embeddings; zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(_trainable_weight(m))
            nn.init.zeros_(m.bias)
    if isinstance(module, Digits32Discriminator):
        nn.init.xavier_uniform_(_trainable_weight(module.embed))


def load_digits32(
    weights_dir: Path = WEIGHTS_DIR,
) -> tuple[Digits32Generator, Digits32Discriminator, dict[str, Any]]:
    """Build the shipped generator (EMA weights) and discriminator in eval mode, plus metadata."""
    meta = json.loads((weights_dir / "digits32.json").read_text())
    generator = Digits32Generator(**meta["generator"])
    discriminator = Digits32Discriminator(**meta["discriminator"])
    generator.load_state_dict(load_file(weights_dir / "digits32_generator.safetensors"))
    discriminator.load_state_dict(load_file(weights_dir / "digits32_discriminator.safetensors"))
    return generator.eval(), discriminator.eval(), meta
