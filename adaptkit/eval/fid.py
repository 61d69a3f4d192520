"""Fréchet distance between two feature sets, computed by torchmetrics' FID."""
from __future__ import annotations

import torch
from torch import nn

from .features import check_feature_sets


class GivenFeatures(nn.Module):
    """A pass-through "feature network" for torchmetrics: adaptkit extracts features once (with
    Inception or the embedded extractor) and shares them between all metrics."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    """FID between feature sets (N, D) and (M, D): ``‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^½)``.

    Uses ``torchmetrics.image.fid.FrechetInceptionDistance`` with a custom feature module (no
    download, no torch-fidelity), in float64; rounding below 0 is reported as 0.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    check_feature_sets(generated, real, "the Fréchet distance", min_rows=2)
    metric = FrechetInceptionDistance(feature=GivenFeatures(real.shape[1]), reset_real_features=True)
    metric.update(real.double(), real=True)
    metric.update(generated.double(), real=False)
    return max(float(metric.compute()), 0.0)
