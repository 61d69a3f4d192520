"""Kernel MMD with a Gaussian kernel, as the BSA paper reports it (the GAN-Metrics recipe)."""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import EvaluationError
from .features import check_feature_sets


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared L2 distances (len(a), len(b)), in float64, clamped at 0 (rounding)."""
    a, b = a.double(), b.double()
    d = a.square().sum(1, keepdim=True) + b.square().sum(1) - 2 * a @ b.T
    return d.clamp_min(0)


def _mean_over_pairs(
    a: torch.Tensor, b: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], rows: int = 1024,
) -> float:
    """mean(fn(squared_distances(a, b))), in row blocks so large sets need little memory."""
    total = sum(float(fn(squared_distances(a[i:i + rows], b)).sum()) for i in range(0, len(a), rows))
    return total / (len(a) * len(b))


def kmmd(generated: torch.Tensor, real: torch.Tensor, *, sigma: float = 1.0) -> float:
    """Gaussian-kernel MMD between feature sets (N, D) and (M, D); 0 for identical sets.

    Bandwidth rule (Xu et al. 2018, GAN-Metrics; ``../shared/docs/METHODS.md``): with ``d`` the
    squared L2 distances, ``k(d) = exp(-d / (2 σ² · mean(d_real,real)))``, where the mean runs
    over all M² real-real pairs, the zero diagonal included. The result is
    ``sqrt(max(mean Kxx + mean Kyy − 2 mean Kxy, 0))`` with every mean over all pairs, diagonal
    terms (k = 1) included: the biased V-statistic, as in GAN-Metrics. It therefore does not
    reach 0 for two different samples of the same distribution; compare values computed with the
    same set sizes.
    """
    check_feature_sets(generated, real, "kmmd")
    if sigma <= 0:
        raise EvaluationError(f"kmmd bandwidth sigma must be positive, got {sigma}")
    scale = 2 * sigma**2 * _mean_over_pairs(real, real, lambda d: d)
    if scale <= 0:
        raise EvaluationError("kmmd needs at least two distinct real images (all real features are equal)")

    def kernel(d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-d / scale)

    k_rr = _mean_over_pairs(real, real, kernel)
    k_gg = _mean_over_pairs(generated, generated, kernel)
    k_rg = _mean_over_pairs(real, generated, kernel)
    return math.sqrt(max(k_rr + k_gg - 2 * k_rg, 0.0))
