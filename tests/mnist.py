"""A tiny reader of the shared MNIST test set (IDX, gzip) for the tests; skips when it is absent."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist-test"


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = np.frombuffer(data, ">u4", count=ndim, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_digits(digit: int) -> torch.Tensor:
    """All test-set images of ``digit`` as (N, 1, 32, 32) in [-1, 1] (28×28 padded by 2 black px)."""
    images, labels = MNIST_DIR / "t10k-images-idx3-ubyte.gz", MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels.is_file()):
        pytest.skip(f"MNIST test set not found in {MNIST_DIR} (the shared data folder beside the repository)")
    pixels = _read_idx(images)[_read_idx(labels) == digit]
    pixels = np.pad(pixels, ((0, 0), (2, 2), (2, 2)))
    return torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1).unsqueeze(1)
