"""Samples from a fit run folder, for ``adaptkit eval``."""
from __future__ import annotations

import torch

from ..io.run_dir import Run
from ..bases.base import BASE_TRUNCATION, Truncation
from ..sample import BatchCallback, generate_images, require_positive, sample_images, seeded


def samples_from_run(
    run: Run, n: int, *, truncation: Truncation = BASE_TRUNCATION, class_id: int | str | None = None,
    seed: int = 0, batch_size: int = 64, on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """``n`` images (N, C, H, W) in [-1, 1] on the CPU from the adapted base of ``run``.

    Latents are truncated normal. Classes (conditional bases): ``class_id`` for all images, else
    drawn from the classes of the run's training images (its learned latents' labels), so the
    samples are compared with the real set in the proportions the adapter was trained on; random
    classes when the run records none.
    """
    require_positive(n, "the number of samples")
    if class_id is not None or not run.base.conditional or run.labels is None:
        return sample_images(run.base, n, truncation=truncation, class_id=class_id, seed=seed,
                             batch_size=batch_size, on_batch=on_batch)
    generator = seeded(seed)
    z = run.base.sample_latents(n, truncation, generator=generator)
    y = run.labels.cpu()[torch.randint(len(run.labels), (n,), generator=generator)]
    return generate_images(run.base, z, y, batch_size=batch_size, on_batch=on_batch)
