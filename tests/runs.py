"""Fake `adaptkit fit` run folders: an adapter checkpoint plus learned latents, as fit writes them."""
from __future__ import annotations

from pathlib import Path

import torch

from adaptkit import attach_adapter, save_adapter
from adaptkit.io.run_dir import save_latents
from models import tiny_cond_generator

TINY_COND = "python:models:tiny_cond_generator"


def make_run(folder: Path, seed: int, *, count: int = 3, labels: list[int] | None = None, base_id: str | None = TINY_COND,
             latents: bool = True, **options) -> Path:
    """Save a bsa adapter with random (non-identity) tensors and ``count`` learned latents."""
    model = tiny_cond_generator()
    handle = attach_adapter(model, "bsa", **options)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in handle.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    save_adapter(handle, folder, base_id=base_id)
    if latents:
        z = torch.randn(count, model.latent_dim, generator=g)
        save_latents(folder, z, torch.tensor(labels if labels is not None else [seed % 4] * count))
    handle.detach()
    return folder
