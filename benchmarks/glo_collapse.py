"""Why bsa + glo blanked out on 100 Omniglot drawings, and which loss settings keep it from doing so:
fit ``digits32`` (class 3) on one Omniglot cell with each variant and print the collapse guard's
sample diversity (pixel std across 16 fixed samples; the unadapted base's at step 0) over the run.

    python benchmarks/glo_collapse.py --alphabet Latin --shots 100 --steps 200

Variants: ``paper`` (plain L1, base-network perceptual weight 0.1: fit's defaults before 0.2),
``paper-lr0.005`` (the same at a tenth of the adapter rate), ``paper-warmup100`` (its rate ramped
up over 100 steps), ``scales4`` (L1 over 4 scales),
``perceptual1`` (perceptual weight 1.0) and ``default`` (both: fit's defaults now).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _jobs import run_jobs, save_results  # noqa: E402
from fewshot import split  # noqa: E402

PAPER = {"pixel_scales": 1, "perceptual_weight": 0.1}
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": PAPER,
    "paper-lr0.005": {**PAPER, "lr_adapter": 0.005},
    "paper-warmup100": {**PAPER, "warmup_steps": 100},
    "scales4": {**PAPER, "pixel_scales": 4},
    "perceptual1": {**PAPER, "perceptual_weight": 1.0},
    "default": {},
}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from adaptkit import FitConfig, fit
    from adaptkit.bases.data32 import load_omniglot
    from adaptkit.images import save_images
    from adaptkit.train.progress import SilentReporter

    images = load_omniglot(Path(job["zip"]), alphabets=[job["alphabet"]]).images
    data = Path(job["work"]) / "data" / job["key"]
    save_images(images[split(len(images), job["shots"], job["seed"])[0]], data)
    out = Path(job["work"]) / job["key"]
    fit(FitConfig(data=str(data), out=str(out), class_id="3", seed=job["seed"], steps=job["steps"], device="cpu",
                  quiet=True, overwrite=True, collapse_check_every=25, **VARIANTS[job["variant"]]),
        reporter=SilentReporter())
    summary = json.loads((out / "summary.json").read_text())
    return {"diversity": [h["diversity"] for h in summary["collapse"]["history"]],
            "steps_checked": [h["step"] for h in summary["collapse"]["history"]],
            "warning": summary["collapse"]["warning"], "final_pixel": summary["final_losses"]["pixel"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--alphabet", default="Latin")
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("runs/glo_collapse"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/glo_collapse.json"))
    args = parser.parse_args()
    zip_path = args.data / "omniglot" / "images_background_small1.zip"
    if not zip_path.is_file():
        parser.error(f"{zip_path} not found: pass --data (the folder holding omniglot/)")
    jobs = [{"key": f"{args.alphabet}-{args.shots}-s{args.seed}-{v}-{args.steps}", "variant": v, "zip": str(zip_path),
             "alphabet": args.alphabet, "shots": args.shots, "seed": args.seed, "steps": args.steps,
             "work": str(args.work)} for v in args.variants]
    started = time.perf_counter()
    rows = run_jobs(jobs, run_job, args.work / "results", args.workers, 1)
    wall = time.perf_counter() - started
    checked = rows[0]["steps_checked"]
    shown = [i for i, s in enumerate(checked) if s % 50 == 0]
    table = Table(title=f"sample diversity, bsa on {args.shots} {args.alphabet} drawings (digits32, class 3)")
    for head in ("variant", *[f"step {checked[i]}" for i in shown], "warned"):
        table.add_column(head, justify="left" if head == "variant" else "right")
    lines = ["| variant | " + " | ".join(f"step {checked[i]}" for i in shown) + " | warned |",
             "|---|" + "---|" * (len(shown) + 1)]
    for r in rows:
        cells = [f"{r['diversity'][i]:.3f}" for i in shown]
        warned = "yes" if r["warning"] else "no"
        table.add_row(r["variant"], *cells, warned)
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + f" | {warned} |")
    Console().print(table)
    command = ("python benchmarks/glo_collapse.py " + " ".join(sys.argv[1:])).strip()
    save_results(args.json, {"command": command, "torch": torch.__version__, "wall_time_s": round(wall, 1),
                             "variants": VARIANTS, "jobs": rows}, "\n".join(lines) + "\n")
    print(f"wrote {args.json} and {args.json.with_suffix('.md')} ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
