"""Kernel Inception Distance (Bińkowski et al. 2018), computed by torchmetrics' KID on given features."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..errors import EvaluationError
from .features import check_feature_sets
from .fid import GivenFeatures

KID_SUBSETS = 100
KID_MAX_SUBSET = 1000


@dataclass(frozen=True)
class KernelDistance:
    """``value``: the mean over ``subsets`` random subsets (``subset_size`` images of each set) of
    the unbiased squared MMD with the cubic polynomial kernel; ``std`` its spread over subsets."""

    value: float
    std: float
    subset_size: int
    subsets: int


def kernel_distance(
    generated: torch.Tensor, real: torch.Tensor, *, subsets: int = KID_SUBSETS, max_subset: int = KID_MAX_SUBSET,
    seed: int = 0,
) -> KernelDistance:
    """KID between feature sets (N, D) and (M, D): ``k(x, y) = (xᵀy / D + 1)³``, the unbiased MMD²
    estimate (within-set diagonal terms left out), averaged over ``subsets`` subsets of
    ``min(N, M, max_subset)`` rows of each set drawn with ``seed``.

    Unlike FID it is unbiased, so it can be compared across set sizes and is meaningful with the
    25–100 real images of few-shot work; it can be slightly negative when the sets match. Uses
    ``torchmetrics.image.kid.KernelInceptionDistance`` with a pass-through feature module, in
    float64; torch's global random state is left as it was.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    check_feature_sets(generated, real, "KID", min_rows=2)
    if subsets < 1 or max_subset < 2:
        raise EvaluationError(f"KID needs at least 1 subset of at least 2 rows, got {subsets} of {max_subset}")
    size = min(len(generated), len(real), max_subset)
    with warnings.catch_warnings():  # its note that features are kept in memory: these are the features
        warnings.simplefilter("ignore")
        metric = KernelInceptionDistance(feature=GivenFeatures(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(generated.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return KernelDistance(float(mean), float(std), size, subsets)
