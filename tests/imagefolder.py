"""Small PNG folders for the fit tests, written into tmp dirs (no data is committed)."""
from __future__ import annotations

from pathlib import Path

import torch

from adaptkit import attach_adapter
from adaptkit.images import to_pil
from models import tiny_cond_generator


def write_images(folder: Path, images: torch.Tensor, prefix: str = "img", suffix: str = ".png") -> list[Path]:
    """Save images in [-1, 1] (N, C, H, W) as ``folder/<prefix>NNN<suffix>``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{prefix}{i:03d}{suffix}" for i in range(len(images))]
    for path, image in zip(paths, images):
        to_pil(image).save(path)
    return paths


def target_images(n: int = 25, seed: int = 1, class_id: int = 1) -> torch.Tensor:
    """Images a bsa adapter on ``tiny_cond_generator`` can reach: the base with random γ/β and
    random latents (a stand-in for a new domain)."""
    model = tiny_cond_generator()
    handle = attach_adapter(model, "bsa")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in handle.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
        z = torch.randn(n, model.latent_dim, generator=g)
        images = model(z, torch.full((n,), class_id))
    handle.detach()
    return images


def blob_images(n: int = 25, resolution: int = 16, seed: int = 0) -> torch.Tensor:
    """A new domain for the tiny generators: one coloured disc per image on a dark background."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, resolution), torch.linspace(-1, 1, resolution), indexing="ij")
    images = []
    for _ in range(n):
        colour = torch.rand(3, generator=g) * 2 - 1
        cx, cy = torch.rand(2, generator=g) - 0.5
        radius = 0.3 + 0.3 * torch.rand((), generator=g)
        disc = (((xx - cx) ** 2 + (yy - cy) ** 2) < radius**2).float()
        images.append(disc * colour[:, None, None] + (1 - disc) * -0.8)
    return torch.stack(images)
