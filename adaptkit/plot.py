"""A loss-curve PNG drawn with Pillow (no plotting dependency): one line per loss term, log scale."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .io.atomic import atomic_path

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _nice_steps(lo: float, hi: float, count: int = 5) -> list[float]:
    span = max(hi - lo, 1e-12)
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def plot_losses(
    steps: Sequence[int], series: dict[str, Sequence[float]], path: str | os.PathLike,
    title: str = "training losses", size: tuple[int, int] = (900, 520),
) -> Path:
    """Draw ``series`` (name → values per step) against ``steps`` on a log-10 y axis and save a PNG
    atomically. Non-positive and non-finite values are left out of their line."""
    width, height = size
    left, right, top, bottom = 80, 170, 40, 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)
    draw.text((left, 10), title, fill="black", font=font)
    points = {
        name: [(s, math.log10(v)) for s, v in zip(steps, values) if v > 0 and math.isfinite(v)]
        for name, values in series.items()
    }
    ys = [y for pts in points.values() for _, y in pts]
    x0, x1 = (min(steps), max(steps)) if steps else (0, 1)
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = max((y1 - y0) * 0.05, 0.05)
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    draw.rectangle([left, top, left + pw, top + ph], outline="black")
    for x in _nice_steps(x0, x1):
        px, _ = at(x, y0)
        draw.line([px, top + ph, px, top + ph + 5], fill="black")
        draw.text((px, top + ph + 8), f"{x:g}", fill="black", font=small, anchor="mt")
    draw.text((left + pw / 2, height - 18), "step", fill="black", font=small, anchor="mt")
    for y in _nice_steps(y0, y1):
        _, py = at(x0, y)
        draw.line([left - 5, py, left + pw, py], fill="#dddddd")
        draw.text((left - 8, py), f"{10 ** y:.3g}", fill="black", font=small, anchor="rm")
    for i, (name, pts) in enumerate(points.items()):
        color = COLORS[i % len(COLORS)]
        xy = [at(s, y) for s, y in pts]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        elif xy:
            draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=color)
        ly = top + 10 + 22 * i
        draw.line([left + pw + 15, ly, left + pw + 40, ly], fill=color, width=3)
        draw.text((left + pw + 48, ly), name, fill="black", font=small, anchor="lm")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
