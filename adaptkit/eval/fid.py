"""Fréchet distance between two feature sets, computed by torchmetrics' FID."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import EvaluationError


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

    if generated.dim() != 2 or real.dim() != 2 or generated.shape[1] != real.shape[1]:
        raise EvaluationError(f"the Fréchet distance needs two (N, D) feature sets of one D, got "
                              f"{tuple(generated.shape)} and {tuple(real.shape)}")
    if len(generated) < 2 or len(real) < 2:
        raise EvaluationError("the Fréchet distance needs at least two generated and two real images")
    metric = FrechetInceptionDistance(feature=GivenFeatures(real.shape[1]), reset_real_features=True)
    metric.update(real.double(), real=True)
    metric.update(generated.double(), real=False)
    return max(float(metric.compute()), 0.0)
