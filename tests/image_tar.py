"""Tiny stand-ins for the CIFAR-10 tar (``split/class/*.jpg``), written into tmp dirs (no data is
committed)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("cat", "airplane", "ship")


def write_image_tar(path: Path, per_split: dict[str, int], suffix: str = ".jpg", seed: int = 0) -> dict[str, np.ndarray]:
    """A gzipped tar of ``per_split[split]`` random 32×32 RGB images per class of ``CLASSES``, each
    class tinted by its own colour, with folder entries and a README beside them; returns the uint8
    (32, 32, 3) pixels of every image by member name."""
    rng = np.random.default_rng(seed)
    pixels = {}
    with tarfile.open(path, "w:gz") as archive:
        readme = b"not an image"
        info = tarfile.TarInfo("README.txt")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))
        for split, count in per_split.items():
            for c, name in enumerate(CLASSES):
                folder = tarfile.TarInfo(f"{split}/{name}")
                folder.type = tarfile.DIRTYPE
                archive.addfile(folder)
                tint = np.eye(3)[c] * 120
                for i in range(count):
                    image = (rng.integers(0, 136, (32, 32, 3)) + tint).astype(np.uint8)
                    buffer = io.BytesIO()
                    Image.fromarray(image).save(buffer, format="PNG" if suffix == ".png" else "JPEG")
                    member = tarfile.TarInfo(f"{split}/{name}/{i:04d}{suffix}")
                    member.size = buffer.tell()
                    buffer.seek(0)
                    archive.addfile(member, buffer)
                    pixels[member.name] = image
    return pixels
