"""Bases for the tests (fit, inspect, pull), built by ``python:fit_bases:...`` factories."""
from __future__ import annotations

import torch
from torch import nn

from adaptkit.bases import Base, wrap_generator
from models import tiny_cond_generator


class TinyFeatures(nn.Module):
    """A small frozen feature network with ``feature_maps`` (like the embedded base's)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.stages = nn.ModuleList([nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
                                     nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())])

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


def tiny_cond_base() -> Base:
    base = wrap_generator("python:fit_bases:tiny_cond_base", tiny_cond_generator())
    base.feature_network = TinyFeatures().eval()
    return base


def projected_base() -> Base:
    """``tiny_cond_base`` naming its latent projection (``layer_roles``), which bsa then adapts too."""
    base = tiny_cond_base()
    base.layer_roles = {"latent_projection": "linear"}
    return base


def broken_base() -> Base:
    """A factory that fails the way a user's can (here: weights it cannot find)."""
    raise RuntimeError("no weights in /nowhere")


def untruncated_base() -> Base:
    """``tiny_cond_base`` sampled without truncation (as digiface64 is)."""
    base = tiny_cond_base()
    base.truncation = None
    return base
