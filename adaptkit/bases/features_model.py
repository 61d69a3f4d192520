"""Features32: a small CNN classifier of 32x32 images, the embedded feature networks.

Two are shipped, both trained by ``examples/train_features.py`` and then only used frozen, in eval
mode: ``features32`` classifies grayscale glyphs (MNIST digits + Omniglot; (B, 1, 32, 32), white on
black) and ``features_rgb32`` CIFAR-10 photos ((B, 3, 32, 32)). Inputs are in [-1, 1].
``features`` gives an embedding for distribution metrics, ``feature_maps`` the intermediate
activations for a perceptual loss.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file
from torch import nn

from .digits32_model import WEIGHTS_DIR


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two conv3x3-BN-ReLU layers at one resolution."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(),
    )


class Features32(nn.Module):
    """Three conv stages at 32, 16 and 8 pixels (2x2 max-pool after each), global average pool,
    a ``feature_dim`` fully connected layer + ReLU (the features) and a linear classifier.
    Fully convolutional up to the global pool, so it also runs on larger inputs."""

    def __init__(
        self, num_classes: int = 146, widths: Sequence[int] = (24, 48, 96), feature_dim: int = 128,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            _stage(cin, cout) for cin, cout in zip([in_channels, *widths[:-1]], widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.embed = nn.Sequential(nn.Linear(widths[-1], feature_dim), nn.ReLU())
        self.classifier = nn.Linear(feature_dim, num_classes)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each stage before pooling: (B, widths[i], H / 2**i, W / 2**i)."""
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
            x = self.pool(x)
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (B, feature_dim) features, after the ReLU (so non-negative)."""
        return self.embed(self.pool(self.feature_maps(x)[-1]).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.classifier(self.features(x))


FEATURES32 = "features32"
FEATURES_RGB32 = "features_rgb32"


def load_features32(
    weights_dir: Path = WEIGHTS_DIR, name: str = FEATURES32,
) -> tuple[Features32, dict[str, Any]]:
    """Build a shipped feature network (``FEATURES32`` or ``FEATURES_RGB32``) in eval mode, plus
    its metadata."""
    meta = json.loads((weights_dir / f"{name}.json").read_text())
    model = Features32(**meta["model"])
    model.load_state_dict(load_file(weights_dir / f"{name}.safetensors"))
    return model.eval(), meta
