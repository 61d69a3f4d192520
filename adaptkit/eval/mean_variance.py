"""The BSA paper's "mean variance": how much of the real features' spread the samples keep."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import EvaluationError
from .features import check_feature_sets


@dataclass(frozen=True)
class MeanVariance:
    """``value``: mean over the used dimensions of var(generated) / var(real) (≈ 1 when the
    samples vary as much as the real images, → 0 on mode collapse). ``dims_used`` of
    ``dims_total``: dimensions where the real variance is (numerically) zero are left out, since
    the ratio is undefined there."""

    value: float
    dims_used: int
    dims_total: int


def mean_variance(generated: torch.Tensor, real: torch.Tensor, *, rel_tol: float = 1e-8) -> MeanVariance:
    """Per-dimension (unbiased) variance of ``generated`` features over that of ``real``, averaged.

    A real dimension counts as zero-variance (and is skipped) when its variance is at most
    ``rel_tol`` times the largest real variance; the result says how many dimensions were used.
    """
    check_feature_sets(generated, real, "mean variance", min_rows=2)
    var_gen, var_real = generated.double().var(0), real.double().var(0)
    used = var_real > rel_tol * var_real.max()
    if not bool(used.any()):
        raise EvaluationError("mean variance is undefined: the real features do not vary at all")
    return MeanVariance(float((var_gen[used] / var_real[used]).mean()), int(used.sum()), real.shape[1])
