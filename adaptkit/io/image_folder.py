"""Reading a folder of images (PNG, JPEG, WebP, BMP, searched recursively) into one tensor."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ImageFolderError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files under ``folder`` (recursive, sorted); an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFolderError(f"image folder {folder} does not exist" if not folder.exists()
                               else f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageFolderError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    return files


def scale_16_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image (mode ``I;16``…) scaled to 8 bits; other images as they are.
    (Pillow's own conversion clips at 255: mid-grey would read as white.)"""
    if not image.mode.startswith("I;16"):
        return image
    array = np.asarray(image).astype(np.float64) / 257.0
    return Image.fromarray(array.round().astype(np.uint8), "L")


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(scale_16_bit(image).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageFolderError(f"cannot read image {path}: {exc}") from None


def read_image_folder(
    folder: str | os.PathLike, *, limit: int | None = None, seed: int = 0,
) -> torch.Tensor:
    """The images under ``folder`` as a float tensor (N, C, H, W) in [-1, 1].

    C is 1 when every image is gray (R = G = B everywhere), else 3. Images whose size differs
    from the most common one are resized to it (bicubic). ``limit`` keeps at most that many
    images, chosen at random with ``seed``.
    """
    files = image_files(folder)
    if limit is not None:
        if limit < 1:
            raise ImageFolderError(f"the number of images to use must be positive, got {limit}")
        if limit < len(files):
            keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:limit]
            files = [files[i] for i in sorted(keep.tolist())]
    arrays = [_read_rgb(f) for f in files]
    height, width = Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
    arrays = [
        a if a.shape[:2] == (height, width)
        else np.asarray(Image.fromarray(a).resize((width, height), Image.Resampling.BICUBIC))
        for a in arrays
    ]
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    if bool((pixels[:, :1] == pixels[:, 1:]).all()):
        pixels = pixels[:, :1]
    return pixels.float().div(127.5).sub(1.0)
