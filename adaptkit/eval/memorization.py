"""Memorization: how near generated samples lie to their nearest training image, measured against
how near the training images lie to each other.

In a feature space, ``d_gen[i]`` is sample i's distance to its nearest training image and
``d_train[j]`` training image j's distance to its nearest *other* training image (leave one out).
A generator that makes new images from the training distribution puts its samples about as far
from the training set as a fresh draw would be, which is what ``d_train`` measures: the two
distributions match. A generator that copies its training images puts its samples at distance ≈ 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import EvaluationError
from ..images import save_grid, side_by_side
from .features import check_feature_sets, resize_and_convert
from .kmmd import squared_distances

COPY_QUANTILE = 0.1
"""A sample counts as a near-copy when it is nearer to a training image than this quantile of the
training images' own leave-one-out nearest-neighbour distances (so ≈ this fraction of a healthy
generator's samples count)."""
NEAREST_PAIRS = 16


@dataclass(frozen=True)
class Memorization:
    """``ratio``: median(d_gen) / median(d_train) (≈ 1 for new images, → 0 for copies).
    ``copies``: the fraction of samples with d_gen below ``threshold``, the ``COPY_QUANTILE``
    quantile of d_train (≈ 0.1 for new images, → 1 for copies)."""

    ratio: float
    copies: float
    threshold: float
    n_train: int


@dataclass(frozen=True)
class NearestTraining:
    """Per sample: the distance to its nearest training image and that image's index."""

    distance: torch.Tensor
    index: torch.Tensor


def nearest_training(generated: torch.Tensor, train: torch.Tensor) -> NearestTraining:
    """For feature sets (N, D) and (M, D): each generated row's nearest training row (L2)."""
    check_feature_sets(generated, train, "the nearest-training-image search")
    d, index = squared_distances(generated, train).min(dim=1)
    return NearestTraining(d.sqrt(), index)


def leave_one_out_distances(train: torch.Tensor) -> torch.Tensor:
    """(M,): each training row's L2 distance to its nearest other row."""
    if len(train) < 2:
        raise EvaluationError("the memorization score needs at least two training images")
    d = squared_distances(train, train)
    d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values.sqrt()


def memorization(generated: torch.Tensor, train: torch.Tensor) -> tuple[Memorization, NearestTraining]:
    """The memorization score of generated features against training features, and each sample's
    nearest training image."""
    nearest = nearest_training(generated, train)
    own = leave_one_out_distances(train)
    typical = float(torch.quantile(own, 0.5))
    if typical <= 0:
        raise EvaluationError("the memorization score is undefined: most training images are duplicates "
                              "(their features are equal)")
    threshold = float(torch.quantile(own, COPY_QUANTILE))
    return Memorization(
        ratio=float(torch.quantile(nearest.distance, 0.5)) / typical,
        copies=float((nearest.distance < threshold).double().mean()),
        threshold=threshold, n_train=len(train),
    ), nearest


def save_nearest(path: str | os.PathLike, generated: torch.Tensor, train: torch.Tensor, nearest: NearestTraining,
                 count: int = NEAREST_PAIRS) -> None:
    """``nearest.png``: the ``count`` samples nearest to the training set (nearest first), each
    beside its nearest training image (both shown at the samples' width)."""
    order = nearest.distance.argsort()[:count]
    size, channels = generated.shape[-1], max(generated.shape[1], train.shape[1])
    samples = resize_and_convert(generated[order].float(), size, channels)
    matched = resize_and_convert(train[nearest.index[order]].float(), size, channels)
    grid, nrow = side_by_side(samples, matched)
    save_grid(grid, path, nrow=nrow)
