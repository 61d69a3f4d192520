"""Readers for the 32x32 training data of the embedded networks: MNIST (IDX) and Omniglot (zip),
grayscale, and CIFAR-10 (a tar of JPEGs), RGB.

Images come back as float tensors (N, C, 32, 32) in [-1, 1]; glyphs are white strokes on black.
"""
from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image

MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = "t10k-labels-idx1-ubyte.gz"
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageSet:
    """Labelled images: ``images`` (N, C, 32, 32) in [-1, 1], ``labels`` (N,) indexing
    ``class_names``."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> ImageSet:
        """The images at ``index`` (same class names)."""
        return ImageSet(self.images[index], self.labels[index], self.class_names)


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-compressed IDX file (the MNIST format) into an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES:
        raise ValueError(f"{path.name}: not an IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim).reshape(shape)


def _to_unit_range(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) in [0, 255] -> float (N, 1, H, W) in [-1, 1]."""
    return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)


def load_mnist(root: Path, digits: Iterable[int] | None = None) -> ImageSet:
    """MNIST from ``root`` (the IDX files), padded 28 -> 32 with 2 black pixels per side.

    ``digits`` keeps only those labels; labels stay the digit values and ``class_names`` is
    always "0".."9".
    """
    images = read_idx(root / MNIST_IMAGES)
    labels = read_idx(root / MNIST_LABELS).astype(np.int64)
    if digits is not None:
        keep = np.isin(labels, list(digits))
        images, labels = images[keep], labels[keep]
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return ImageSet(_to_unit_range(images), torch.from_numpy(labels), [str(d) for d in range(10)])


def load_omniglot(zip_path: Path, alphabets: Iterable[str] | None = None) -> ImageSet:
    """Omniglot characters read straight from a zip of ``*/alphabet/characterNN/*.png``.

    The 105x105 1-bit drawings are inverted (white strokes on black), area-resized to 32x32
    and scaled to [-1, 1]. Classes are "alphabet/characterNN", sorted; ``alphabets`` keeps only
    those alphabets.
    """
    wanted = set(alphabets) if alphabets is not None else None
    pixels: list[np.ndarray] = []
    names: list[str] = []
    with zipfile.ZipFile(zip_path) as archive:
        for member in sorted(n for n in archive.namelist() if n.endswith(".png")):
            alphabet, character = member.split("/")[-3:-1]
            if wanted is not None and alphabet not in wanted:
                continue
            with Image.open(io.BytesIO(archive.read(member))) as drawing:
                gray = drawing.convert("L").point(lambda v: 255 - v)
                pixels.append(np.asarray(gray.resize((32, 32), Image.Resampling.BOX)))
            names.append(f"{alphabet}/{character}")
    if not pixels:
        raise ValueError(f"{zip_path.name}: no Omniglot images found")
    class_names = sorted(set(names))
    index = {name: i for i, name in enumerate(class_names)}
    labels = torch.tensor([index[n] for n in names], dtype=torch.int64)
    return ImageSet(_to_unit_range(np.stack(pixels)), labels, class_names)


def load_image_tar(tar_path: Path) -> dict[str, ImageSet]:
    """Every split of a (gzipped) tar of ``split/class/*.jpg`` (or ``.png``), read without
    extracting it: RGB (N, 3, H, W) in [-1, 1], members in name order, the sorted class names of
    all splits shared (CIFAR-10's JPEG copy: splits ``train`` and ``test``)."""
    found: dict[str, list[tuple[str, np.ndarray]]] = {}
    with tarfile.open(tar_path) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or not parts[2].lower().endswith(
                    (".jpg", ".jpeg", ".png")):
                continue
            with Image.open(io.BytesIO(archive.extractfile(member).read())) as photo:
                pixels = np.asarray(photo.convert("RGB"))
            found.setdefault(parts[0], []).append((member.name, pixels))
    if not found:
        raise ValueError(f"{tar_path.name}: no split/class/image files found")
    class_names = sorted({name.split("/")[1] for items in found.values() for name, _ in items})
    index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, items in found.items():
        items.sort(key=lambda item: item[0])
        pixels = torch.from_numpy(np.stack([p for _, p in items])).permute(0, 3, 1, 2)
        labels = torch.tensor([index[name.split("/")[1]] for name, _ in items])
        splits[split] = ImageSet(pixels.float() / 127.5 - 1.0, labels, class_names)
    return splits


def split_per_class(
    labels: torch.Tensor, holdout_fraction: float, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random stratified split: indices (train, held_out), ``holdout_fraction`` of each class
    held out (rounded, at least one)."""
    train, held_out = [], []
    for label in labels.unique():
        members = torch.nonzero(labels == label).squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        n_out = max(1, round(holdout_fraction * len(members)))
        held_out.append(members[:n_out])
        train.append(members[n_out:])
    return torch.cat(train).sort().values, torch.cat(held_out).sort().values
