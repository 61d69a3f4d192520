"""Writing generated images: grids, one file per image, and animated GIFs (all written atomically)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from .io.atomic import atomic_path


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (B, C, H, W) or (C, H, W) → uint8 in [0, 255]; NaNs become mid-grey."""
    x = images.detach().float().cpu().nan_to_num(0.0)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_pil(image: torch.Tensor) -> Image.Image:
    """One image in [-1, 1] (C, H, W), C = 1 or 3, as a PIL image (grayscale or RGB)."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected one image (1 or 3, H, W), got shape {tuple(image.shape)}")
    array = to_uint8(image).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0], "L") if image.shape[0] == 1 else Image.fromarray(array, "RGB")


def grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """A batch (B, C, H, W) in [-1, 1] tiled into one image (C, H', W'), ``nrow`` images per row
    (default: a square-ish grid), separated by black lines."""
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
    from torchvision.utils import make_grid  # torchvision loads only when a picture is drawn

    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=-1.0)
    return grid[:1] if images.shape[1] == 1 else grid


def side_by_side(left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Each ``left[i]`` beside ``right[i]`` (both (B, C, H, W)), pairs tiled ~square: (images, images
    per row), for :func:`save_grid`."""
    pairs = torch.stack([left.detach().cpu(), right.detach().cpu()], dim=1).flatten(0, 1)
    return pairs, 2 * math.ceil(math.sqrt(len(left)))


def _save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2) -> Path:
    """Save a batch of images in [-1, 1] (B, 1 or 3, H, W) as one grid PNG; returns the path."""
    return _save_png(to_pil(grid_image(images, nrow, padding)), path)


def save_images(images: torch.Tensor, folder: str | os.PathLike, prefix: str = "") -> list[Path]:
    """Save each image of a batch as ``folder/<prefix>NNNN.png``; returns the paths."""
    width = max(4, len(str(len(images) - 1)))
    return [_save_png(to_pil(img), Path(folder) / f"{prefix}{i:0{width}d}.png") for i, img in enumerate(images)]


def save_gif(frames: Sequence[torch.Tensor] | torch.Tensor, path: str | os.PathLike, duration_ms: int = 80,
             bounce: bool = True) -> Path:
    """Save frames in [-1, 1] (each (C, H, W)) as a looping animated GIF; ``bounce`` plays them
    forwards then back, so the loop has no jump."""
    images = [to_pil(f) for f in frames]
    if not images:
        raise ValueError("no frames to save")
    sequence = images + images[-2:0:-1] if bounce else images
    with atomic_path(path) as tmp:
        sequence[0].save(tmp, format="GIF", save_all=True, append_images=sequence[1:], duration=duration_ms, loop=0)
    return Path(path)
