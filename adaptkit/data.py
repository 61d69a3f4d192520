"""Training images: a folder of PNG/JPEG/WebP/BMP files → tensors in [-1, 1], class folders, and
the files that had to be skipped."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .bases.base import Base
from .errors import DataError, option
from .io.image_folder import MAX_PIXELS, READ_ERRORS, folder_images, read_image


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


def load_image_folder(
    folder: str | os.PathLike,
    *,
    channels: int,
    resolution: int,
    strict: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> ImageSet:
    """Every image under ``folder`` that :func:`~adaptkit.io.image_folder.folder_images` finds,
    read by :func:`~adaptkit.io.image_folder.read_image` at ``resolution``. Other files (special
    files are never opened) and images Pillow cannot read are listed in ``skipped`` (``strict``: a
    ``DataError`` instead). A missing folder, no usable image, or an image too large to open safely
    is a ``DataError``."""
    root = Path(folder)
    files, skipped = folder_images(root)
    images, kept = [], []
    for rel in files:
        path = root / rel
        try:
            images.append(read_image(path, channels, resolution, max_pixels))
        except READ_ERRORS as exc:
            skipped.append((rel, str(exc).replace(str(path), path.name) or type(exc).__name__))
            continue
        kept.append(rel)
    skipped.sort(key=lambda item: item[0].as_posix())
    if skipped and strict:
        raise DataError(f"{len(skipped)} file(s) in {root} cannot be used ({option('strict')}): {describe_skipped(skipped)}")
    if not kept:
        raise DataError(f"none of the {len(skipped)} file(s) in {root} is a readable image: "
                        f"{describe_skipped(skipped)}")
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
            raise DataError(f"base {base.id} is unconditional: it has no class to fix with {option('class_id')}")
        return None
    if fixed is not None:
        return torch.full((len(data),), _class_id(base, fixed, option("class_id")), dtype=torch.long)
    names = sorted({f for f in data.folders if f is not None})
    ids: dict[str | None, int] = {name: _class_id(base, name, f"class folder {name!r}") for name in names}
    ids[None] = -1
    return torch.tensor([ids[name] for name in data.folders], dtype=torch.long)


def _class_id(base: Base, name: str | int, what: str) -> int:
    try:
        return base.class_id(name)
    except ValueError as exc:
        raise DataError(f"{what}: {exc}") from None
