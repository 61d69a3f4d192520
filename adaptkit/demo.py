"""The one-command demo: a built-in few-shot set (bold slanted typeset digits, made procedurally)
and ``run_demo``, which adapts the embedded ``digits32`` base to it with ``fit``."""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .train.config import FitConfig
from .train.loop import fit
from .train.plan import check_out

DEMO_OUT = "runs/demo"
DEMO_DATA = "data"
"""The demo's training images go to this subfolder of the run folder."""
DEMO_STEPS = 400
DIGITS = 8
"""digits32 draws the digits 0–7; each demo image is a digit, stored in its class folder."""
RESOLUTION, CANVAS = 32, 128


def _font(size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's scalable default font (Aileron, needs FreeType), or its small bitmap font without FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, TypeError):   # no FreeType; Pillow < 10.1
        return ImageFont.load_default()


def _glyph(digit: int, size: float) -> Image.Image:
    """``digit`` drawn white on black, centred on the CANVAS×CANVAS canvas, ~``size`` pixels tall."""
    font = _font(size)
    if isinstance(font, ImageFont.FreeTypeFont):
        img = Image.new("L", (CANVAS, CANVAS), 0)
        ImageDraw.Draw(img).text((CANVAS / 2, CANVAS / 2), str(digit), fill=255, font=font, anchor="mm")
        return img
    left, top, right, bottom = font.getbbox(str(digit))
    small = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(small).text((1 - left, 1 - top), str(digit), fill=255, font=font)
    scale = size / small.height
    small = small.resize((round(small.width * scale), round(small.height * scale)), Image.BICUBIC)
    img = Image.new("L", (CANVAS, CANVAS), 0)
    img.paste(small, ((CANVAS - small.width) // 2, (CANVAS - small.height) // 2))
    return img


def demo_image(digit: int, rng: random.Random) -> Image.Image:
    """One 32×32 grayscale image: ``digit`` very bold and slanted, with jittered size, weight,
    slant, rotation and position drawn from ``rng``."""
    img = _glyph(digit, rng.uniform(76, 92)).filter(ImageFilter.MaxFilter(2 * rng.randint(4, 5) + 1))
    slant = rng.uniform(0.25, 0.4)
    img = img.transform(img.size, Image.AFFINE, (1, slant, -slant * CANVAS / 2, 0, 1, 0), Image.BICUBIC)
    img = img.rotate(rng.uniform(-10, 10), Image.BICUBIC, translate=(rng.uniform(-6, 6), rng.uniform(-6, 6)))
    return img.resize((RESOLUTION, RESOLUTION), Image.LANCZOS)


def write_demo_set(folder: str | Path, n: int = 25, seed: int = 0) -> Path:
    """Write ``n`` demo images to ``folder/<digit>/<index>.png`` (digits 0–7 in turn); the same
    seed gives bitwise the same files. Returns ``folder``."""
    folder, rng = Path(folder), random.Random(seed)
    for i in range(n):
        digit = i % DIGITS
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        demo_image(digit, rng).save(folder / str(digit) / f"{i:03d}.png")
    return folder


def run_demo(out: str | Path = DEMO_OUT, *, steps: int = DEMO_STEPS, overwrite: bool = False,
             command: str | None = None, **settings: Any) -> Path:
    """Write the demo set to ``out/data`` and adapt the embedded ``digits32`` base to it with
    ``fit`` (``settings``: any other ``FitConfig`` field, e.g. ``adapter``, ``seed``, ``quiet``).
    The demo's rule for ``out``: a new run's (missing or empty, or ``overwrite``, which also
    replaces ``out/data``); its settings are checked before the images are written. ``fit`` then
    takes ``out`` holding only its training images as empty. Returns ``out``."""
    out = Path(out)
    config = FitConfig(data=str(out / DEMO_DATA), out=str(out), steps=steps, overwrite=overwrite, **settings)
    config.validate()
    check_out(out, overwrite)
    shutil.rmtree(out / DEMO_DATA, ignore_errors=True)
    write_demo_set(out / DEMO_DATA)
    return fit(config, command=command)
