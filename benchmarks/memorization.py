"""The memorization diagnostics on real runs: ``update-all`` at a high rate next to a ``bsa`` adapter,
both fit on the same few Omniglot drawings (Latin alphabet, embedded base ``digits32``) with
``--eval-every``. Writes a picture: each run's samples nearest to the training drawings beside
those drawings, and the memorization ratio per evaluation.

    OMP_NUM_THREADS=1 python benchmarks/memorization.py [--data ../shared/data] [--shots 10] [--steps 400]

Run folders go to ``--work``; a method whose run folder holds a finished ``summary.json`` is not fit again.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from adaptkit import FitConfig, evaluate, fit
from adaptkit.sample import sample_run
from adaptkit.images import save_images
from adaptkit.bases.data32 import load_omniglot
from adaptkit.io.image_folder import read_image_folder
from adaptkit.io.atomic import atomic_path, write_json
from adaptkit.io.run_dir import LAST_DIR, load_run
from adaptkit.plot import plot_losses
from adaptkit.train.progress import SilentReporter

METHODS: dict[str, dict[str, Any]] = {
    "update-all lr 1e-3": {"adapter": "none", "unfreeze": ["all"], "lr_base": 1e-3},
    "bsa": {"adapter": "bsa"},
}
SCALE = 3


def prepare(zip_path: Path, work: Path, shots: int, seed: int) -> tuple[Path, Path]:
    """``shots`` random Latin drawings to train on and the alphabet's other drawings as the real set."""
    images = load_omniglot(zip_path, alphabets=["Latin"]).images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    train, real = work / "data" / "train", work / "data" / "real"
    if not train.is_dir():
        save_images(images[order[:shots]], train)
        save_images(images[order[shots:]], real)
    return train, real


def evaluations(run: Path) -> list[dict[str, float]]:
    with open(run / "log.csv") as f:
        return [{k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f) if r.get("eval_kid")]


def last_step_nearest(run: Path, train: Path, real: Path, samples: int, seed: int) -> dict[str, Any]:
    """The last step's model scored as fit scored it, with its nearest-training-drawing picture."""
    generated = sample_run(load_run(run / LAST_DIR), samples, seed=seed)
    report = evaluate(generated, read_image_folder(real), train=read_image_folder(train), seed=seed,
                      nearest=run / "last_nearest.png")
    return {k: v for k, v in report.to_dict().items() if k != "notes"}


def picture(runs: dict[str, Path], last: dict[str, dict[str, Any]], path: Path) -> None:
    """Per run: the last step's samples nearest to the training drawings, each beside its nearest
    drawing, with its memorization ratio; below, the ratio per evaluation of every run."""
    chart = path.with_name(path.stem + "_ratio.png")
    rows = {name: evaluations(run) for name, run in runs.items()}
    plot_losses([int(r["step"]) for r in next(iter(rows.values()))],
                {name: [r["eval_memorization_ratio"] for r in rs] for name, rs in rows.items()}, chart,
                title="memorization ratio per evaluation (about 1: new images; toward 0: copies)", size=(900, 300))
    tiles = []
    for name, run in runs.items():
        grid = Image.open(run / "last_nearest.png").convert("RGB")
        tiles.append((grid.resize((grid.width * SCALE, grid.height * SCALE), Image.Resampling.NEAREST),
                      f"{name}, step {int(rows[name][-1]['step'])}: ratio {last[name]['memorization_ratio']:.2f}, "
                      f"near-copies {last[name]['near_copies']:.2f}"))
    graph = Image.open(chart).convert("RGB")
    width = max(sum(t.width for t, _ in tiles) + 40 * (len(tiles) + 1), graph.width)
    height = 40 + max(t.height for t, _ in tiles) + 20 + graph.height
    canvas = Image.new("RGB", (width, height), "white")
    draw, x = ImageDraw.Draw(canvas), 40
    for tile, label in tiles:
        draw.text((x, 12), label, fill="black", font=ImageFont.load_default(size=14))
        canvas.paste(tile, (x, 40))
        x += tile.width + 40
    canvas.paste(graph, (0, 40 + max(t.height for t, _ in tiles) + 20))
    chart.unlink()
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--shots", type=int, default=10, help="training drawings")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-samples", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/memorization"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/memorization.json"))
    parser.add_argument("--picture", type=Path, default=Path("docs/images/memorization.png"))
    args = parser.parse_args()

    zip_path = args.data / "omniglot" / "images_background_small1.zip"
    if not zip_path.is_file():
        parser.error(f"{zip_path} not found: pass --data (the folder holding omniglot/)")
    train, real = prepare(zip_path, args.work, args.shots, args.seed)
    runs = {}
    for name, settings in METHODS.items():
        run = args.work / name.split()[0]
        runs[name] = run
        summary = run / "summary.json"
        if summary.is_file() and json.loads(summary.read_text()).get("status") == "finished":
            continue
        fit(FitConfig(data=str(train), out=str(run), class_id="3", steps=args.steps, seed=args.seed,
                      eval_every=args.eval_every, eval_samples=args.eval_samples, eval_real=str(real),
                      device="cpu", quiet=True, overwrite=True, **settings), reporter=SilentReporter())
    last = {name: last_step_nearest(run, train, real, args.eval_samples, args.seed) for name, run in runs.items()}
    picture(runs, last, args.picture)
    summaries = {name: json.loads((run / "summary.json").read_text()) for name, run in runs.items()}
    results = {name: {"eval": summaries[name]["eval"], "evaluations": evaluations(run), "last_step_report": last[name],
                      "fit_s": summaries[name]["wall_time_s"]} for name, run in runs.items()}
    command = "python benchmarks/memorization.py " + " ".join(sys.argv[1:])
    write_json(args.json, {"command": command.strip(), "torch": torch.__version__,
                           "settings": {k: str(v) for k, v in vars(args).items()}, "runs": results})
    for name, result in results.items():
        report = result["last_step_report"]
        print(f"{name}: best step by kid {result['eval']['best_step']}; last step: memorization ratio "
              f"{report['memorization_ratio']:.3f}, near-copies {report['near_copies']:.3f}, kid {report['kid']:.4g}, "
              f"fid {report['fid']:.4g}, fit {result['fit_s']} s")
    print(f"wrote {args.picture} and {args.json}")


if __name__ == "__main__":
    main()
