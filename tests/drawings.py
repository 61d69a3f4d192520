"""Black-on-white drawings, as most users' sketches and scans are (Omniglot style), made here."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw


def write_drawings(folder: Path, n: int = 25, size: int = 105, seed: int = 0) -> Path:
    """``n`` PNGs of a few black pen strokes on a white page (1-bit, like Omniglot's)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n):
        page = Image.new("L", (size, size), 255)
        draw = ImageDraw.Draw(page)
        for _ in range(rng.randint(2, 4)):
            points = [(rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size) for _ in range(3)]
            draw.line(points, fill=0, width=rng.randint(4, 7), joint="curve")
        page.convert("1").save(folder / f"drawing{i:02d}.png")
    return folder
