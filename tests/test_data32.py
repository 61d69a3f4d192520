"""Readers of the 32x32 training data, on small synthetic files."""
from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adaptkit.bases.data32 import (
    MNIST_IMAGES, MNIST_LABELS, load_image_tar, load_mnist, load_omniglot, read_idx, split_per_class,
)
from image_tar import CLASSES, write_image_tar


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_read_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04rest"))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "b.gz")


def test_load_mnist_pads_scales_and_filters(tmp_path: Path) -> None:
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 255
    _write_idx(tmp_path / MNIST_IMAGES, images)
    _write_idx(tmp_path / MNIST_LABELS, np.array([9, 1, 8]))
    data = load_mnist(tmp_path, digits=[8, 9])
    assert data.images.shape == (2, 1, 32, 32)
    assert data.labels.tolist() == [9, 8]
    assert data.images[0, 0, 2, 2] == 1 and data.images[0, 0, 0, 0] == -1
    assert data.class_names == [str(d) for d in range(10)]


def _png(stroke: bool) -> bytes:
    image = Image.new("1", (105, 105), 1)
    if stroke:
        image.paste(0, (40, 40, 60, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_load_omniglot_inverts_resizes_and_labels(tmp_path: Path) -> None:
    zip_path = tmp_path / "omniglot.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("set/Greek/character02/0002_01.png", _png(True))
        archive.writestr("set/Greek/character01/0001_01.png", _png(False))
        archive.writestr("set/Latin/character01/0003_01.png", _png(True))
    data = load_omniglot(zip_path)
    assert data.class_names == ["Greek/character01", "Greek/character02", "Latin/character01"]
    assert data.labels.tolist() == [0, 1, 2]
    assert data.images.shape == (3, 1, 32, 32)
    assert data.images[0].max() == -1
    assert data.images[1, 0, 15, 15] == 1 and data.images[1, 0, 0, 0] == -1
    assert len(load_omniglot(zip_path, alphabets=["Latin"])) == 1


def test_split_per_class_is_stratified_and_disjoint() -> None:
    labels = torch.tensor([0] * 10 + [1] * 5)
    train, held = split_per_class(labels, 0.2, torch.Generator().manual_seed(0))
    assert sorted(train.tolist() + held.tolist()) == list(range(15))
    assert labels[held].bincount().tolist() == [2, 1]


def test_load_image_tar_reads_every_split_with_shared_sorted_classes(tmp_path: Path) -> None:
    pixels = write_image_tar(tmp_path / "set.tar.gz", {"train": 3, "test": 2}, suffix=".png")
    splits = load_image_tar(tmp_path / "set.tar.gz")
    assert sorted(splits) == ["test", "train"]
    for name, count in [("train", 3), ("test", 2)]:
        data = splits[name]
        assert data.class_names == sorted(CLASSES)
        assert data.images.shape == (3 * count, 3, 32, 32)
        assert data.labels.bincount().tolist() == [count] * 3
    first = splits["test"]  # members in name order: airplane/0000 first
    expected = torch.from_numpy(pixels["test/airplane/0000.png"]).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(first.images[0], expected) and first.labels[0] == 0
    assert first.images.min() >= -1 and first.images.max() <= 1
