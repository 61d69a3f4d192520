"""``evaluate``: every metric of a generated image set against a real one (and the training set), as one
report."""
from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from rich.progress import Progress
from rich.table import Table

from ..errors import EvaluationError
from ..io.atomic import write_json
from .diversity import PerceptualDistance, intra_cluster_diversity, load_perceptual_distance, pairwise_diversity
from .features import FeatureExtractor, load_feature_extractor
from .fid import frechet_distance
from .kid import KID_SUBSETS, kernel_distance
from .kmmd import kmmd
from .mean_variance import mean_variance
from .memorization import COPY_QUANTILE, memorization, save_nearest


MIN_RELIABLE_IMAGES = 50
"""Below this many images in either set the report warns: KMMD, FID and mean variance need many
images (docs/usage.md shows FID between two sets of one distribution at 10…300 images)."""
COLLAPSE_FRACTION = 0.1
"""Generated LPIPS diversity below this fraction of the real set's is reported as collapse."""


@dataclass
class EvalReport:
    """The metrics of one generated set against one real set, and how they were computed."""

    n_generated: int
    n_real: int
    extractor: str
    feature_dim: int
    kmmd: float
    kmmd_sigma: float
    mean_variance: float
    mean_variance_dims: int
    fid: float
    kid: float
    kid_std: float
    kid_subset_size: int
    lpips_diversity: float
    lpips_diversity_real: float
    lpips_distance: str
    lpips_images: int
    intra_lpips: float
    intra_lpips_clusters: int
    n_train: int
    memorization_ratio: float
    near_copies: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as JSON text; with ``path``, also written there (atomically)."""
        if path is not None:
            write_json(path, self.to_dict())
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> Table:
        """A rich table: one row per metric, with which direction is better."""
        table = Table(title=f"{self.n_generated} generated vs. {self.n_real} real images",
                      caption=f"features: {self.extractor}; LPIPS: {self.lpips_distance}",
                      caption_justify="left")
        for col, justify in (("metric", "left"), ("value", "right"), ("better", "left"), ("details", "left")):
            table.add_column(col, justify=justify)
        table.add_row("KMMD", f"{self.kmmd:.4f}", "lower", f"Gaussian, σ = {self.kmmd_sigma:g}")
        table.add_row("mean variance", f"{self.mean_variance:.4f}", "≈ 1 (low: collapse)",
                      f"{self.mean_variance_dims}/{self.feature_dim} dims")
        table.add_row("FID", f"{self.fid:.3f}", "lower", f"{self.feature_dim}-d features")
        table.add_row("KID", f"{self.kid:.5f}", "lower", f"± {self.kid_std:.5f}; subsets of {self.kid_subset_size}")
        table.add_row("LPIPS diversity", f"{self.lpips_diversity:.4f}", f"≈ real: {self.lpips_diversity_real:.4f}",
                      f"pairs of {self.lpips_images} images")
        table.add_row("intra-cluster LPIPS", f"{self.intra_lpips:.4f}", "higher (low: copies)",
                      f"{self.intra_lpips_clusters} clusters around {self.n_train} training images")
        table.add_row("memorization ratio", f"{self.memorization_ratio:.3f}", "≈ 1 (→ 0: copies)",
                      "median distance to the nearest training image / theirs to each other")
        table.add_row("near-copies", f"{self.near_copies:.3f}", f"≈ {COPY_QUANTILE:g} (→ 1: copies)",
                      f"samples nearer than {COPY_QUANTILE:.0%} of training images are to each other")
        return table


def _check_images(images: torch.Tensor, what: str, notes: list[str]) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise EvaluationError(f"{what} images must be a tensor (N, 1 or 3, H, W) in [-1, 1], got {shape}")
    if len(images) < 2:
        raise EvaluationError(f"need at least two {what} images, got {len(images)}")
    if not bool(torch.isfinite(images).all()):
        raise EvaluationError(f"the {what} images contain NaN or infinite values")
    outside = float(((images < -1) | (images > 1)).float().mean())
    if outside > 0:
        notes.append(f"{100 * outside:.2f}% of the {what} pixel values were outside [-1, 1] and were clipped")
        images = images.clamp(-1, 1)
    return images


def _warnings(n_generated: int, n_real: int, mean_var: float, div_gen: float, div_real: float) -> list[str]:
    """Where the numbers must not be read at face value: too few images, or samples that hardly
    differ from each other (whatever mean variance says)."""
    found = []
    few = [f"{n} {what}" for n, what in ((n_generated, "generated"), (n_real, "real")) if n < MIN_RELIABLE_IMAGES]
    if few:
        found.append(f"warning: only {' and '.join(few)} images: below {MIN_RELIABLE_IMAGES} per set KMMD, FID and "
                     "mean variance are unreliable (FID grows as sets shrink); compare runs at equal, larger sizes")
    if div_gen < COLLAPSE_FRACTION * div_real:
        verdict = (f"although mean variance is {mean_var:.3f}: feature spread alone does not show it"
                   if mean_var >= 0.5 else f"and mean variance is {mean_var:.3f}")
        found.append(f"warning: collapse: LPIPS diversity of the generated images is {div_gen:.4f}, "
                     f"{100 * div_gen / div_real if div_real > 0 else 0:.0f}% of the real set's {div_real:.4f}: the "
                     f"samples are (nearly) all the same image, {verdict}")
    return found


def evaluate(
    generated: torch.Tensor,
    real: torch.Tensor,
    *,
    train: torch.Tensor | None = None,
    extractor: str | FeatureExtractor = "auto",
    diversity: str | PerceptualDistance = "auto",
    inception_weights: str | os.PathLike | None = None,
    sigma: float = 1.0,
    max_lpips_images: int = 100,
    kid_subsets: int = KID_SUBSETS,
    nearest: str | os.PathLike | None = None,
    batch_size: int = 64,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> EvalReport:
    """Compare ``generated`` with ``real`` images ((N, 1|3, H, W) in [-1, 1]; sizes may differ), and
    with ``train``, the images the generator was trained on (default: ``real``).

    ``extractor``: ``auto`` (Inception-v3 when its weights are on disk, else the embedded
    network), ``inception``, ``embedded`` (``features_rgb32`` when either set is RGB, else
    ``features32``), or a ``FeatureExtractor``. ``diversity``: the
    LPIPS distance, ``auto`` (the ``lpips`` package when AlexNet weights are on disk, else
    ``feature-maps``), ``lpips`` or ``feature-maps``, or a ``PerceptualDistance``. Features are
    extracted once and shared by KMMD, mean variance, FID, KID (``kid_subsets`` subsets drawn with
    ``seed``) and the memorization score (:mod:`adaptkit.eval.memorization`, against ``train``).
    LPIPS diversity is the mean distance over all pairs of at most ``max_lpips_images`` images of
    a set (chosen with ``seed``), for the generated and, as the reference, the real set;
    intra-cluster LPIPS clusters all generated images around the training images. ``nearest``:
    write there a PNG of the 16 samples nearest to the training set, each beside its nearest
    training image. ``progress`` shows rich progress bars.
    """
    notes: list[str] = []
    generated = _check_images(generated, "generated", notes)
    real = _check_images(real, "real", notes)
    train = real if train is None else _check_images(train, "training", notes)
    channels = max(generated.shape[1], real.shape[1])
    if isinstance(extractor, str):
        extractor, note = load_feature_extractor(extractor, channels=channels, inception_weights=inception_weights,
                                                 device=device)
        notes += [note] if note else []
    distance = diversity if isinstance(diversity, PerceptualDistance) else load_perceptual_distance(
        diversity, extractor, fallback=lambda: load_feature_extractor("embedded", channels=channels, device=device)[0])

    with Progress(transient=True) if progress else nullcontext() as bar:
        def advance(description: str, total: int) -> Callable[[int], None] | None:
            if bar is None:
                return None
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        feats_gen = extractor.features(generated, batch_size=batch_size,
                                       on_batch=advance("features of generated images", len(generated)))
        feats_real = extractor.features(real, batch_size=batch_size,
                                        on_batch=advance("features of real images", len(real)))
        feats_train = feats_real if train is real else extractor.features(
            train, batch_size=batch_size, on_batch=advance("features of training images", len(train)))
        div_gen, lpips_images = pairwise_diversity(
            generated, distance, max_images=max_lpips_images, seed=seed, batch_size=batch_size,
            on_batch=advance("LPIPS (generated)", min(max_lpips_images, len(generated))))
        div_real, _ = pairwise_diversity(
            real, distance, max_images=max_lpips_images, seed=seed, batch_size=batch_size,
            on_batch=advance("LPIPS (real)", min(max_lpips_images, len(real))))
        intra, clusters = intra_cluster_diversity(generated, train, distance, batch_size=batch_size,
                                                  on_batch=advance("intra-cluster LPIPS", len(generated)))
    mv = mean_variance(feats_gen, feats_real)
    kid = kernel_distance(feats_gen, feats_real, subsets=kid_subsets, seed=seed)
    copying, nearest_found = memorization(feats_gen, feats_train)
    if nearest is not None:
        save_nearest(nearest, generated, train, nearest_found)
    if not clusters:
        notes.append("intra-cluster LPIPS is not defined here: no training image has two generated images nearest "
                     "to it (generate more images)")
    if mv.dims_used < mv.dims_total:
        notes.append(f"mean variance skips {mv.dims_total - mv.dims_used} feature dims with zero real variance")
    notes += _warnings(len(generated), len(real), mv.value, div_gen, div_real)
    return EvalReport(
        n_generated=len(generated), n_real=len(real), extractor=extractor.name, feature_dim=feats_real.shape[1],
        kmmd=kmmd(feats_gen, feats_real, sigma=sigma), kmmd_sigma=sigma,
        mean_variance=mv.value, mean_variance_dims=mv.dims_used,
        fid=frechet_distance(feats_gen, feats_real), kid=kid.value, kid_std=kid.std, kid_subset_size=kid.subset_size,
        lpips_diversity=div_gen, lpips_diversity_real=div_real, lpips_distance=distance.name,
        lpips_images=lpips_images, intra_lpips=intra, intra_lpips_clusters=clusters, n_train=len(train),
        memorization_ratio=copying.ratio, near_copies=copying.copies, notes=notes,
    )
