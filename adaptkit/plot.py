"""Line plots drawn with Pillow (no plotting dependency): loss curves of a run, one panel per term
(``plot_loss_terms``), or several series on one axis (``plot_losses``)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .io.atomic import atomic_path

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#000000", "#bcbd22",
          "#7f7f7f", "#393b79"]


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
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


@dataclass
class _Axes:
    """Where a panel's plot area is (pixels) and what it shows: steps x0…x1, values y0…y1 (log-10 of
    the values on a ``log`` axis)."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float
    log: bool

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (self.left + (x - self.x0) / (self.x1 - self.x0) * self.width,
                self.top + (1 - (y - self.y0) / (self.y1 - self.y0)) * self.height)


def _scaled(values: Sequence[float], log: bool) -> list[float | None]:
    """Values on the axis's scale; non-finite ones (and non-positive ones on a log axis) as None."""
    return [None if not math.isfinite(v) or (log and v <= 0) else (math.log10(v) if log else v) for v in values]


def _draw_panel(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], steps: Sequence[int],
                series: dict[str, Sequence[float]], log: bool, colors: Sequence[str] = COLORS) -> _Axes:
    """Axes, ticks, grid and one line per series (in ``colors``, cycled) inside ``box`` (left, top,
    width, height of the plot area)."""
    small = _font(12)
    scaled = {name: _scaled(values, log) for name, values in series.items()}
    ys = [y for values in scaled.values() for y in values if y is not None]
    x0, x1 = (min(steps), max(steps)) if steps else (0, 1)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = max((y1 - y0) * 0.05, 0.05 if log else 1e-6 * max(abs(y0), abs(y1), 1e-12))
    axes = _Axes(*box, x0, x1 if x1 > x0 else x0 + 1, y0 - pad, y1 + pad, log)
    left, top, width, height = box
    draw.rectangle([left, top, left + width, top + height], outline="black")
    for x in _nice_steps(axes.x0, axes.x1):
        px, _ = axes.at(x, axes.y0)
        draw.line([px, top + height, px, top + height + 5], fill="black")
        draw.text((px, top + height + 8), f"{x:g}", fill="black", font=small, anchor="mt")
    for y in _nice_steps(axes.y0, axes.y1):
        _, py = axes.at(axes.x0, y)
        draw.line([left - 5, py, left + width, py], fill="#dddddd")
        draw.text((left - 8, py), f"{10 ** y:.3g}" if log else f"{y:.6g}", fill="black", font=small, anchor="rm")
    for i, values in enumerate(scaled.values()):
        color = colors[i % len(colors)]
        xy = [axes.at(s, y) for s, y in zip(steps, values) if y is not None]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        elif xy:
            draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=color)
    return axes


def _save(img: Image.Image, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def plot_losses(
    steps: Sequence[int], series: dict[str, Sequence[float]], path: str | os.PathLike,
    title: str = "training losses", size: tuple[int, int] = (900, 520),
) -> Path:
    """Draw ``series`` (name → values per step) against ``steps`` on one log-10 y axis, with a
    legend (the plot narrows to fit its longest name), and save a PNG atomically. Non-positive and
    non-finite values are left out of their line."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    legend_font = _font(12)
    longest = max((draw.textlength(name, font=legend_font) for name in series), default=0)
    left, right, top, bottom = 80, max(170, 58 + int(longest)), 40, 50
    draw.text((left, 10), title, fill="black", font=_font(15))
    axes = _draw_panel(draw, (left, top, width - left - right, height - top - bottom), steps, series, log=True)
    draw.text((left + axes.width / 2, height - 18), "step", fill="black", font=_font(12), anchor="mt")
    for i, name in enumerate(series):
        ly, lx = top + 10 + 22 * i, left + axes.width
        draw.line([lx + 15, ly, lx + 40, ly], fill=COLORS[i % len(COLORS)], width=3)
        draw.text((lx + 48, ly), name, fill="black", font=legend_font, anchor="lm")
    return _save(img, path)


def plot_loss_terms(
    steps: Sequence[int], series: dict[str, Sequence[float]], path: str | os.PathLike,
    title: str = "training losses", width: int = 900, panel_height: int = 200, mark_step: int | None = None,
) -> Path:
    """One panel per series (name → values per step), each on its own y axis scaled to its own
    values, so a large flat term does not flatten the others: a log-10 axis where the values are
    positive and span at least a factor 10, else a linear one; ``mark_step`` (e.g. the best
    evaluated step) is a dashed line in every panel. Saved as a PNG, atomically."""
    columns = 1 if len(series) == 1 else 2
    rows = max(1, math.ceil(len(series) / columns))
    top, gap_x, gap_y, left = 40, 90, 50, 80
    panel_width = (width - left - 20 - gap_x * (columns - 1)) / columns
    img = Image.new("RGB", (width, int(top + rows * (panel_height + gap_y))), "white")
    draw = ImageDraw.Draw(img)
    marked = "" if mark_step is None else f"; dashed: step {mark_step}"
    draw.text((left, 10), f"{title} (each on its own axis; x: step{marked})", fill="black", font=_font(15))
    for i, (name, values) in enumerate(series.items()):
        finite = [v for v in values if math.isfinite(v)]
        log = bool(finite) and min(finite) > 0 and max(finite) >= 10 * min(finite)
        row, col = divmod(i, columns)
        box = (left + col * (panel_width + gap_x), top + row * (panel_height + gap_y) + 18, panel_width,
               panel_height - 18)
        color = COLORS[i % len(COLORS)]
        draw.text((box[0], box[1] - 16), name + (" (log)" if log else ""), fill=color, font=_font(13))
        axes = _draw_panel(draw, box, steps, {name: values}, log, colors=[color])
        if mark_step is not None:
            x, _ = axes.at(mark_step, axes.y0)
            for y in range(int(axes.top), int(axes.top + axes.height), 8):
                draw.line([x, y, x, min(y + 4, axes.top + axes.height)], fill="#555555")
    return _save(img, path)
