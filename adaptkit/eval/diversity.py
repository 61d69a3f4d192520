"""LPIPS diversity: the mean perceptual distance between all pairs of images of one set.

LPIPS (Zhang et al. 2018) between images a and b: each layer's activations are unit-normalized
over channels at every position, the squared differences are weighted per channel (learned,
non-negative weights w), averaged over positions and summed over layers. Two sources of layers:

- the ``lpips`` package (AlexNet with its learned v0.1 weights) when torchvision's AlexNet
  weights are on disk;
- otherwise a feature extractor's ``feature_maps`` (an embedded Features32 network: features32
  for gray images, features_rgb32 for RGB) with unit weights ("LPIPS-style").

Since w ≥ 0, LPIPS is a squared L2 distance between per-image embeddings
``e(x) = concat_l [√w_l ⊙ normalize(f_l(x)) / √(h_l·w_l)]``: each image is embedded once and all
pairs come from one Gram matrix.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EvaluationError
from ..torchvision_weights import is_cached, weights_file
from .features import FeatureExtractor
from .kmmd import squared_distances

LPIPS_MIN_SIZE = 64  # LPIPS was trained on 64×64 patches; smaller images are upsampled to this
DISTANCE_KINDS = ("auto", "lpips", "feature-maps")


@dataclass(eq=False)
class PerceptualDistance:
    """``layers(images)`` → per-layer activations (B, C_l, h_l, w_l) of images in [-1, 1];
    ``channel_weights``: per layer, non-negative weights (C_l,) (LPIPS' learned ones), or None
    for unit weights."""

    name: str
    layers: Callable[[torch.Tensor], Sequence[torch.Tensor]]
    channel_weights: Sequence[torch.Tensor] | None = None

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, E) embeddings whose squared L2 distances are the perceptual distances."""
        parts = []
        for layer, f in enumerate(self.layers(images)):
            f = F.normalize(f.float(), dim=1, eps=1e-10) / f.shape[-1] ** 0.5 / f.shape[-2] ** 0.5
            if self.channel_weights is not None:
                f = f * self.channel_weights[layer].to(f).sqrt()[:, None, None]
            parts.append(f.flatten(1))
        return torch.cat(parts, 1)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances (B,) between paired images ``a[i]``, ``b[i]``."""
        return (self.embed(a) - self.embed(b)).double().square().sum(1)


def lpips_distance(net: nn.Module) -> PerceptualDistance:
    """The distance of an ``lpips.LPIPS`` module (version 0.1, non-spatial), equal to ``net(a, b)``.
    Gray images are repeated to RGB; images smaller than 64 pixels are upsampled to 64×64."""
    device = next(net.parameters()).device
    weights = [lin.model[-1].weight.detach().flatten() for lin in net.lins]
    if any(bool((w < 0).any()) for w in weights):
        raise EvaluationError("LPIPS weights must be non-negative (as the published v0.1 weights are)")

    def layers(images: torch.Tensor) -> list[torch.Tensor]:
        x = images.to(device, torch.float32).expand(-1, 3, -1, -1)
        if min(x.shape[-2:]) < LPIPS_MIN_SIZE:
            x = F.interpolate(x, size=(LPIPS_MIN_SIZE, LPIPS_MIN_SIZE), mode="bilinear", align_corners=False)
        return list(net.net(net.scaling_layer(x)))

    return PerceptualDistance(f"lpips {net.pnet_type} v0.1", layers, weights)


def lpips_alexnet(device: torch.device | str | None = None) -> PerceptualDistance:
    """LPIPS (AlexNet, v0.1) from the ``lpips`` package; its AlexNet weights come from torchvision's
    cache, downloaded there if missing (``adaptkit.torchvision_weights``)."""
    weights_file("alexnet", needed_by="LPIPS diversity", instead="or use the feature-maps distance")
    import lpips

    with warnings.catch_warnings():  # lpips calls torchvision's deprecated `pretrained=True`
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="alex", verbose=False).eval().requires_grad_(False)
    return lpips_distance(net.to(device) if device is not None else net)


def feature_map_distance(extractor: FeatureExtractor) -> PerceptualDistance:
    """The LPIPS-style distance over ``extractor.feature_maps``, with unit weights."""
    if not extractor.has_feature_maps:
        raise EvaluationError(f"feature extractor {extractor.name} has no feature_maps for an LPIPS-style distance")
    return PerceptualDistance(f"feature maps of {extractor.name}, unit weights",
                              extractor.feature_maps)


def load_perceptual_distance(
    kind: str, extractor: FeatureExtractor, *, fallback: Callable[[], FeatureExtractor],
) -> PerceptualDistance:
    """``lpips``, ``feature-maps`` (of ``extractor`` if it has them, else of ``fallback()``), or
    ``auto``: ``lpips`` when its AlexNet weights are on disk, else ``feature-maps``."""
    if kind not in DISTANCE_KINDS:
        raise EvaluationError(f"unknown diversity distance {kind!r} (choose from {', '.join(DISTANCE_KINDS)})")
    if kind == "lpips" or (kind == "auto" and is_cached("alexnet")):
        return lpips_alexnet(extractor.device)
    return feature_map_distance(extractor if extractor.has_feature_maps else fallback())


def embed_images(
    images: torch.Tensor, distance: PerceptualDistance, *, batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``distance.embed`` of ``images`` in batches, on the CPU."""
    parts = []
    for start in range(0, len(images), batch_size):
        parts.append(distance.embed(images[start:start + batch_size]).cpu())
        if on_batch is not None:
            on_batch(len(parts[-1]))
    return torch.cat(parts)


def _mean_pair_distance(embeddings: torch.Tensor) -> float:
    n = len(embeddings)
    return float(squared_distances(embeddings, embeddings).sum() / (n * (n - 1)))


@torch.no_grad()
def pairwise_diversity(
    images: torch.Tensor, distance: PerceptualDistance, *, max_images: int = 100, seed: int = 0,
    batch_size: int = 64, on_batch: Callable[[int], None] | None = None,
) -> tuple[float, int]:
    """Mean ``distance`` over all pairs of ``images`` (at most ``max_images`` of them, chosen at
    random with ``seed``); returns (mean, number of images used)."""
    if len(images) < 2:
        raise EvaluationError("diversity needs at least two images")
    if len(images) > max_images:
        images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:max_images]]
    embeddings = embed_images(images, distance, batch_size=batch_size, on_batch=on_batch)
    return _mean_pair_distance(embeddings), len(embeddings)


@torch.no_grad()
def intra_cluster_diversity(
    generated: torch.Tensor, train: torch.Tensor, distance: PerceptualDistance, *, batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[float, int]:
    """Intra-cluster LPIPS as CDC (Ojha et al. 2021) measures it: each generated image joins the
    cluster of its nearest training image under ``distance``; the mean distance over the pairs
    within each cluster of at least two images, averaged over those clusters. Returns (value,
    clusters used); NaN and 0 when no training image has two generated images nearest to it. Low
    values: the samples near each training image are (near-)copies of it."""
    gen = embed_images(generated, distance, batch_size=batch_size, on_batch=on_batch)
    centres = embed_images(train, distance, batch_size=batch_size)
    cluster = squared_distances(gen, centres).argmin(dim=1)
    values = [_mean_pair_distance(gen[cluster == c]) for c in cluster.unique() if int((cluster == c).sum()) >= 2]
    if not values:
        return float("nan"), 0
    return sum(values) / len(values), len(values)
