"""Black-on-white drawings, as most users' sketches and scans are (Omniglot style), made here."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw


def write_drawings(folder: Path, n: int = 25, size: int = 105, seed: int = 0, jitter: float | None = None) -> Path:
    """``n`` PNGs of a few black pen strokes on a white page (1-bit, like Omniglot's): random strokes
    per page, or with ``jitter`` one character, the same strokes on every page, each point moved by
    up to ``jitter`` × ``size`` (as different people draw it)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    def strokes() -> list[list[tuple[float, float]]]:
        return [[(rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size) for _ in range(3)]
                for _ in range(rng.randint(2, 4))]

    character = strokes() if jitter is not None else None
    for i in range(n):
        page = Image.new("L", (size, size), 255)
        draw = ImageDraw.Draw(page)
        if character is None:
            lines = strokes()
        else:
            lines = [[(x + rng.uniform(-jitter, jitter) * size, y + rng.uniform(-jitter, jitter) * size)
                      for x, y in line] for line in character]
        for points in lines:
            draw.line(points, fill=0, width=rng.randint(4, 7), joint="curve")
        page.convert("1").save(folder / f"drawing{i:02d}.png")
    return folder
