"""Writing a run folder: the adapter, latents, pictures, loss log and summary."""
from __future__ import annotations

import csv
import math
import platform
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..bases.base import Base, Truncation
from ..images import save_grid, side_by_side
from ..io.atomic import atomic_path, write_json
from ..io.image_folder import invert_images
from ..io.run_dir import (
    INTERPOLATION_PNG, LOG_CSV, LOSS_PNG, METRICS_PNG, RECONSTRUCTIONS_PNG, SAMPLES_PNG, SUMMARY_JSON,
)
from ..plot import plot_loss_terms
from ..sample import StripEnds, consecutive_pairs, generate_images, interpolate_images, pick_rows, sample_images

INTERPOLATION_STEPS = 8


EVAL_PREFIX = "eval_"


def merge_rows(history: list[dict[str, float]], evaluations: list[dict[str, float]]) -> list[dict[str, float]]:
    """The loss rows and the evaluation rows (their metrics as ``eval_<name>``), one row per step."""
    rows = {int(r["step"]): dict(r) for r in history}
    for r in evaluations:
        step = int(r["step"])
        rows.setdefault(step, {"step": step}).update({EVAL_PREFIX + k: v for k, v in r.items() if k != "step"})
    return [rows[step] for step in sorted(rows)]


def write_log(out: Path, history: list[dict[str, float]], evaluations: list[dict[str, float]] | None = None,
              best_step: int | None = None) -> None:
    """``log.csv`` (one row per logged or evaluated step, rewritten atomically), ``loss.png`` and,
    with ``evaluations``, ``metrics.png`` (``best_step`` marked)."""
    rows = merge_rows(history, evaluations or [])
    if not rows:
        (out / LOG_CSV).unlink(missing_ok=True)
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(out / LOG_CSV) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    write_loss_plot(out, history)
    if evaluations:
        names = [k for k in evaluations[0] if k != "step"]
        plot_loss_terms([int(r["step"]) for r in evaluations], {n: [r[n] for r in evaluations] for n in names},
                        out / METRICS_PNG, title="evaluation during training", mark_step=best_step)


def append_log(out: Path, row: dict[str, float]) -> None:
    """Append one logged step to ``log.csv`` (with the header when the file is new), so the log
    grows while training runs; a resumed run first rewrites it from its checkpoint (``write_log``)."""
    path = out / LOG_CSV
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def write_loss_plot(out: Path, history: list[dict[str, float]]) -> None:
    """``loss.png``: every logged term against the step, each in its own panel and on its own axis."""
    if not history:
        return
    terms = [c for c in dict.fromkeys(k for row in history for k in row) if c not in ("step", "elapsed_s")]
    plot_loss_terms([int(r["step"]) for r in history], {t: [r.get(t, math.nan) for r in history] for t in terms},
                    out / LOSS_PNG)


def write_pictures(out: Path, base: Base, images: torch.Tensor, latents: torch.Tensor | None,
                   labels: torch.Tensor | None, *, samples: int, truncation: Truncation, seed: int,
                   invert: bool = False) -> None:
    """``samples.png`` (truncated-normal samples of each training class), and, when the objective
    learned latents, ``reconstructions.png`` and ``interpolation.png`` (linear interpolation
    between consecutive learned latents). ``invert``: the run trained on inverted images; every
    picture is inverted back, so it shows images as the training images are."""
    shown = invert_images if invert else (lambda x: x)
    classes = sorted(set(labels.tolist())) if labels is not None else [None]
    per_class = math.ceil(samples / len(classes) / 8) * 8 if len(classes) > 1 else samples
    drawn = [sample_images(base, per_class, truncation=truncation, class_id=c, seed=seed + i)
             for i, c in enumerate(classes)]
    save_grid(shown(torch.cat(drawn)), out / SAMPLES_PNG, nrow=8 if len(classes) > 1 else None)
    if latents is None:
        return
    grid, nrow = side_by_side(images, generate_images(base, latents, labels))
    save_grid(shown(grid), out / RECONSTRUCTIONS_PNG, nrow=nrow)
    pairs = consecutive_pairs(len(latents)) if len(latents) > 1 else [(0, 0)]
    z_a, y_a = pick_rows(latents, labels, [a for a, _ in pairs])
    z_b, y_b = pick_rows(latents, labels, [b for _, b in pairs])
    strips = interpolate_images(base, StripEnds(z_a, z_b, y_a, y_b), INTERPOLATION_STEPS)
    save_grid(shown(strips.flatten(0, 1)), out / INTERPOLATION_PNG, nrow=INTERPOLATION_STEPS)


def versions() -> dict[str, str]:
    import torchvision

    return {"adaptkit": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "platform": platform.platform(terse=True)}


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    write_json(out / SUMMARY_JSON, {**summary, "versions": versions()})

