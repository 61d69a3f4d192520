"""Training image folders: formats, conversion, class folders, skipped files, clear errors."""
import os
import signal
import struct
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image

from adaptkit.bases import wrap_generator
from adaptkit.data import image_classes, load_image_folder
from adaptkit.errors import DataError
from adaptkit.io.image_folder import read_image
from models import tiny_cond_generator, tiny_generator


def solid(color, size=(8, 8), mode="RGB"):
    return Image.new(mode, size, color)


def test_formats_recursive_sorted_and_converted(tmp_path):
    solid((255, 0, 0)).save(tmp_path / "b.png")
    solid((0, 255, 0)).save(tmp_path / "a.jpg", quality=100)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    solid((0, 0, 255)).save(tmp_path / "sub" / "deeper" / "c.webp", lossless=True)
    solid((255, 255, 255)).save(tmp_path / "sub" / "d.BMP")
    (tmp_path / ".hidden.png").write_bytes(b"ignored")
    data = load_image_folder(tmp_path, channels=3, resolution=4)
    assert [f.as_posix() for f in data.files] == ["a.jpg", "b.png", "sub/d.BMP", "sub/deeper/c.webp"]
    assert data.images.shape == (4, 3, 4, 4) and data.images.dtype == torch.float32
    assert torch.allclose(data.images[1], torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1).expand(3, 4, 4))
    assert data.images[2].eq(1).all()  # white BMP
    assert data.folders == [None, None, "sub", "sub"]
    assert data.skipped == []


def test_center_crop_resize_and_grayscale(tmp_path):
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255  # only the central square is white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    x = read_image(tmp_path / "wide.png", channels=1, resolution=5)
    assert x.shape == (1, 5, 5) and x.eq(1).all()


def test_transparency_is_composited_onto_white(tmp_path):
    solid((0, 0, 0, 0), mode="RGBA").save(tmp_path / "clear.png")
    assert read_image(tmp_path / "clear.png", channels=3, resolution=2).eq(1).all()


def test_corrupt_and_non_image_files_are_skipped_and_listed(tmp_path):
    solid((10, 20, 30)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "notes.txt").write_text("hello")
    data = load_image_folder(tmp_path, channels=3, resolution=4)
    assert [f.name for f in data.files] == ["good.png"]
    reasons = dict((p.name, why) for p, why in data.skipped)
    assert set(reasons) == {"broken.png", "notes.txt"}
    assert "not a PNG/JPEG/WebP/BMP" in reasons["notes.txt"]
    with pytest.raises(DataError, match=r"2 file\(s\) .* cannot be used \(strict\): broken\.png"):
        load_image_folder(tmp_path, channels=3, resolution=4, strict=True)


@contextmanager
def fails_after(seconds: int):
    """Fail the test if the block runs longer than ``seconds`` (a hang); ``pytest.fail`` is no
    ``Exception``, so the code under test cannot catch it."""
    def hang(signum, frame):
        pytest.fail(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_special_files_are_skipped_and_listed_not_opened(tmp_path):
    solid((10, 20, 30)).save(tmp_path / "good.png")
    os.mkfifo(tmp_path / "x.png")  # opening it would block until someone writes to it
    with fails_after(10):
        data = load_image_folder(tmp_path, channels=3, resolution=4)
    assert [f.name for f in data.files] == ["good.png"]
    assert [(p.name, why) for p, why in data.skipped] == [("x.png", "not a regular file")]


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    Image.new("I;16", (4, 4), 32768).save(tmp_path / "grey16.png")  # mid-grey of 0–65535
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    for channels in (1, 3):
        x = read_image(tmp_path / "grey16.png", channels=channels, resolution=4)
        assert x.shape == (channels, 4, 4) and x.abs().max() < 0.01, x.flatten()[:3]  # 128/127.5 − 1


def test_truncated_image_is_skipped(tmp_path):
    solid((10, 20, 30), size=(64, 64)).save(tmp_path / "a.jpg")
    raw = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(raw[: len(raw) // 2])
    solid((1, 2, 3)).save(tmp_path / "b.png")
    data = load_image_folder(tmp_path, channels=3, resolution=4)
    assert [p.name for p, _ in data.skipped] == ["a.jpg"]


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "no images in"),
    (lambda p: (p.mkdir(), (p / "x.png").write_bytes(b"junk")), r"none of the 1 file\(s\) .* is a readable image: x\.png"),
    (lambda p: p.write_text("a file"), "is not a folder"),
])
def test_bad_folders_are_one_clear_error(tmp_path, setup, message):
    folder = tmp_path / "data"
    setup(folder)
    with pytest.raises(DataError, match=message):
        load_image_folder(folder, channels=3, resolution=4)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size (what a decompression bomb looks like before decoding)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path):
    solid((1, 2, 3)).save(tmp_path / "ok.png")
    (tmp_path / "bomb.png").write_bytes(png_header_only(40_000, 40_000))
    with pytest.raises(DataError, match=r"bomb\.png is too large to open safely .*decompression bomb"):
        load_image_folder(tmp_path, channels=3, resolution=4)
    (tmp_path / "bomb.png").unlink()
    with pytest.raises(DataError, match="limit is 10 pixels"):
        load_image_folder(tmp_path, channels=3, resolution=4, max_pixels=10)


def make_classes(tmp_path, names):
    for i, name in enumerate(names):
        (tmp_path / name).mkdir()
        solid((i, i, i)).save(tmp_path / name / "x.png")
    return load_image_folder(tmp_path, channels=3, resolution=4)


def test_class_folders_give_labels(tmp_path):
    base = wrap_generator("cond", tiny_cond_generator())
    data = make_classes(tmp_path, ["0", "3", "2"])
    assert image_classes(data, base).tolist() == [0, 2, 3]  # files sorted: 0/, 2/, 3/
    assert image_classes(data, base, "1").tolist() == [1, 1, 1]
    base.class_names = ["zero", "one", "two", "three"]
    assert image_classes(data, base, "two").tolist() == [2, 2, 2]


def test_class_errors_and_images_without_a_class_folder(tmp_path):
    cond = wrap_generator("cond", tiny_cond_generator())
    data = make_classes(tmp_path, ["cats"])
    with pytest.raises(DataError, match="class folder 'cats': unknown class 'cats'"):
        image_classes(data, cond)
    with pytest.raises(DataError, match="class_id: class 9 is out of range"):
        image_classes(data, cond, 9)
    flat = tmp_path / "flat"
    (flat / "1").mkdir(parents=True)
    solid((0, 0, 0)).save(flat / "loose.png")
    solid((0, 0, 0)).save(flat / "1" / "a.png")
    loose = load_image_folder(flat, channels=3, resolution=4)
    by_file = dict(zip((f.name for f in loose.files), image_classes(loose, cond).tolist()))
    assert by_file == {"loose.png": -1, "a.png": 1}  # -1: no class folder, training searches its class
    uncond = wrap_generator("plain", tiny_generator())
    assert image_classes(loose, uncond) is None
    with pytest.raises(DataError, match="unconditional"):
        image_classes(loose, uncond, 1)
