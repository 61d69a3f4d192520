"""The one image reader: which files under a folder are images, and one image file → a tensor in
[-1, 1]. Training (:mod:`adaptkit.data`) and ``adaptkit eval`` both read images through it, so
both see the same pixels."""
from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_KINDS = "PNG/JPEG/WebP/BMP"
PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Images with more pixels than this are refused as possible decompression bombs (Pillow's limit)."""
READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)
"""What Pillow raises for a file it cannot decode."""


def folder_images(folder: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The image files under ``folder`` (recursive, hidden files and folders ignored, sorted) and
    the other files with why they are no image: not a regular file (a FIFO, socket or device, never
    opened: it could block forever) or not a PNG/JPEG/WebP/BMP file. Paths are relative to
    ``folder``. A missing folder or one without image files is a ``DataError``."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in (n for n in filenames if not n.startswith(".")):
            path = Path(dirpath, name)
            rel = path.relative_to(root)
            if not path.is_file():
                others.append((rel, "not a regular file"))
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                others.append((rel, f"not a {IMAGE_KINDS} file"))
            else:
                images.append(rel)
    if not images:
        raise DataError(f"no images in {root} (looked for {', '.join(IMAGE_SUFFIXES)}, recursively)")
    return sorted(images, key=Path.as_posix), sorted(others, key=lambda other: other[0].as_posix())


def read_image(
    path: Path, channels: int, resolution: int | None = None, max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """One image as (channels, S, S) in [-1, 1]: EXIF orientation applied, 16-bit grayscale scaled
    to 8 bits, transparency composited onto white, converted to grayscale (1 channel) or RGB (3),
    the central square cropped and, given a ``resolution``, resized to it with Lanczos filtering
    (S = ``resolution``, else the square's side).

    Raises ``DataError`` for an image too large to open safely; Pillow's own errors
    (:data:`READ_ERRORS`) for one it cannot decode.
    """
    if channels not in (1, 3):
        raise DataError(f"cannot convert images to {channels} channels (only 1 = grayscale or 3 = RGB)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=PIL_FORMATS) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise Image.DecompressionBombError(f"{width}×{height} pixels")
                img = _flatten_alpha(_scale_16_bit(ImageOps.exif_transpose(img)))
                img = _center_square(img.convert("L" if channels == 1 else "RGB"))
                if resolution is not None:
                    img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(
                f"{path} is too large to open safely ({exc}; the limit is {max_pixels:,} pixels): "
                "possibly a decompression bomb — remove it or shrink it"
            ) from None
    array = np.asarray(img, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).float().div_(127.5).sub_(1.0)
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1).contiguous()


def read_image_folder(
    folder: str | os.PathLike, *, limit: int | None = None, seed: int = 0,
) -> torch.Tensor:
    """The images under ``folder``, read by :func:`read_image`, as one tensor (N, C, S, S) in [-1, 1].

    C is 1 when every image is gray (R = G = B everywhere), else 3. S is the most common side of
    the images' central squares; the others are resized to it. ``limit`` keeps at most that many
    images, chosen at random with ``seed``. An unreadable image is a ``DataError``.
    """
    root = Path(folder)
    files = folder_images(root)[0]
    if limit is not None:
        if limit < 1:
            raise DataError(f"the number of images to use must be positive, got {limit}")
        if limit < len(files):
            keep = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:limit]
            files = [files[i] for i in sorted(keep.tolist())]
    images = [_read_or_refuse(root / f) for f in files]
    side = Counter(x.shape[-1] for x in images).most_common(1)[0][0]
    pixels = torch.stack([x if x.shape[-1] == side else _read_or_refuse(root / f, side)
                          for f, x in zip(files, images)])
    return pixels[:, :1].contiguous() if bool((pixels[:, :1] == pixels[:, 1:]).all()) else pixels


def _read_or_refuse(path: Path, resolution: int | None = None) -> torch.Tensor:
    try:
        return read_image(path, 3, resolution)
    except READ_ERRORS as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _scale_16_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image (mode ``I;16``…) scaled to 8 bits; other images as they are.
    (Pillow's own conversion clips at 255: mid-grey would read as white.)"""
    if not image.mode.startswith("I;16"):
        return image
    array = np.asarray(image).astype(np.float64) / 257.0
    return Image.fromarray(array.round().astype(np.uint8), "L")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent images onto white (how they look on a page)."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img


def _center_square(img: Image.Image) -> Image.Image:
    """The largest central square of ``img`` (nothing outside it reaches the resize filter)."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return img.crop((left, top, left + side, top + side))


def invert_images(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] with light and dark swapped (8-bit value v → 255 − v)."""
    return images.neg()
