"""Training images: a folder of PNG/JPEG/WebP/BMP files → tensors in [-1, 1], class folders, and
the files that had to be skipped."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .bases.base import Base
from .errors import DataError
from .io.image_folder import scale_16_bit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Images with more pixels than this are refused as possible decompression bombs (Pillow's limit)."""


@dataclass
class ImageSet:
    """Images (N, C, R, R) in [-1, 1]; ``files`` relative to ``root``; ``folders[i]`` is the
    first-level subfolder of image i (its class folder) or None; ``skipped`` lists (file, reason)."""

    root: Path
    images: torch.Tensor
    files: list[Path]
    folders: list[str | None]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)


def _candidates(root: Path) -> list[Path]:
    """Every non-hidden file under ``root``, recursively, sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


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


def read_image(path: Path, channels: int, resolution: int, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """One image as (channels, resolution, resolution) in [-1, 1]: EXIF orientation applied,
    16-bit grayscale scaled to 8 bits, transparency composited onto white, converted to grayscale
    (1 channel) or RGB (3), the central square cropped and resized with Lanczos filtering.

    Raises ``DataError`` for an image too large to open safely; Pillow's own errors otherwise.
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
                img = _flatten_alpha(scale_16_bit(ImageOps.exif_transpose(img)))
                img = img.convert("L" if channels == 1 else "RGB")
                img = _center_square(img).resize((resolution, resolution), Image.Resampling.LANCZOS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(
                f"{path} is too large to open safely ({exc}; the limit is {max_pixels:,} pixels): "
                "possibly a decompression bomb — remove it or shrink it"
            ) from None
    array = np.asarray(img, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).float().div_(127.5).sub_(1.0)
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1).contiguous()


def load_image_folder(
    folder: str | os.PathLike,
    *,
    channels: int,
    resolution: int,
    strict: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> ImageSet:
    """Every PNG/JPEG/WebP/BMP image under ``folder`` (recursively, hidden files ignored), converted
    by :func:`read_image`. Other files, special files (FIFOs, sockets, devices: never opened) and
    images Pillow cannot read are listed in ``skipped`` (``strict``: a ``DataError`` instead). A
    missing folder, no usable image, or an image too large to open safely is a ``DataError``."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder (--data takes a folder of images)")
    files = _candidates(root)
    if not files:
        raise DataError(f"no image files in {root} (looked for {', '.join(IMAGE_SUFFIXES)}, recursively)")
    images, kept, skipped = [], [], []
    for path in files:
        rel = path.relative_to(root)
        if not path.is_file():  # a FIFO, socket or device: opening it could block forever
            skipped.append((rel, "not a regular file"))
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((rel, "not a PNG/JPEG/WebP/BMP file"))
            continue
        try:
            images.append(read_image(path, channels, resolution, max_pixels))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            skipped.append((rel, str(exc).replace(str(path), path.name) or type(exc).__name__))
            continue
        kept.append(rel)
    if skipped and strict:
        raise DataError(f"{len(skipped)} file(s) in {root} cannot be used (--strict): {describe_skipped(skipped)}")
    if not kept:
        raise DataError(f"none of the {len(files)} file(s) in {root} is a readable image: {describe_skipped(skipped)}")
    folders = [rel.parts[0] if len(rel.parts) > 1 else None for rel in kept]
    return ImageSet(root, torch.stack(images), kept, folders, skipped)


def describe_skipped(skipped: list[tuple[Path, str]], limit: int = 5) -> str:
    """``a.png (reason); b.txt (reason); and N more``."""
    shown = "; ".join(f"{p.as_posix()} ({reason})" for p, reason in skipped[:limit])
    return shown + (f"; and {len(skipped) - limit} more" if len(skipped) > limit else "")


def image_classes(data: ImageSet, base: Base, fixed: str | int | None = None) -> torch.Tensor | None:
    """The class id of each image for a conditional base (``None`` for an unconditional one):
    ``fixed`` (a class id or name) for every image, or else each image's class folder, read as a
    class name of the base or a class number; −1 for an image in no class folder (training gives
    it the class that reconstructs it best)."""
    if not base.conditional:
        if fixed is not None:
            raise DataError(f"base {base.id} is unconditional: it has no class to fix with --class")
        return None
    if fixed is not None:
        return torch.full((len(data),), _class_id(base, fixed, "--class"), dtype=torch.long)
    names = sorted({f for f in data.folders if f is not None})
    ids: dict[str | None, int] = {name: _class_id(base, name, f"class folder {name!r}") for name in names}
    ids[None] = -1
    return torch.tensor([ids[name] for name in data.folders], dtype=torch.long)


def _class_id(base: Base, name: str | int, what: str) -> int:
    try:
        return base.class_id(name)
    except ValueError as exc:
        raise DataError(f"{what}: {exc}") from None
