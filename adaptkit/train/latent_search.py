"""Starting points for per-image latents: the best of K random draws (and, for images without a class
on a class-conditional base, the class that reconstructs them best)."""
from __future__ import annotations

from typing import Callable

import torch

from ..bases.base import Base

Distances = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``distances(fake, index)`` → (B,): how far each generated image is from training image ``index``."""


@torch.no_grad()
def search_latents(
    base: Base,
    count: int,
    labels: torch.Tensor | None,
    distances: Distances,
    *,
    candidates: int,
    rng: torch.Generator,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """For each of ``count`` training images, the latent among ``candidates`` draws of N(0, I) whose
    generated image is nearest under ``distances``, with its class: ``labels[i]`` where it is ≥ 0,
    else the class of the winning draw (draw k tries class ``order[k mod C]`` for a random order of
    the C classes, so every class is tried when ``candidates`` ≥ C). Returns (latents, labels)."""
    if candidates < 1:
        raise ValueError("the latent search needs at least one candidate")
    device = base.device
    best = torch.full((count,), float("inf"), device=device)
    latents = torch.zeros(count, base.latent_dim, device=device)
    found = labels.clone() if labels is not None else None
    unknown = labels < 0 if labels is not None else None
    order = torch.randperm(base.num_classes, generator=rng, device=device) if base.conditional else None
    everyone = torch.arange(count, device=device)
    for k in range(candidates):
        z = torch.randn(count, base.latent_dim, generator=rng, device=device)
        y = None
        if labels is not None and order is not None:
            y = torch.where(unknown, order[k % len(order)], labels)  # type: ignore[arg-type]
        for index in everyone.split(batch_size):
            fake = base.generate(z[index], None if y is None else y[index]).float()
            dist = distances(fake, index)
            better = dist < best[index]
            chosen = index[better]
            best[chosen] = dist[better]
            latents[chosen] = z[chosen]
            if found is not None and y is not None:
                found[chosen] = y[chosen]
    return latents, found
