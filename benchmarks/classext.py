"""Class extension: add MNIST digits 8 and 9 to the embedded base ``digits32`` (trained on 0–7) from
10, 25 or 100 images per class, with the adversarial objective, and follow FID and KMMD per new
class against the held-out real 8s and 9s during training.

Methods (every one is ``adaptkit fit --objective adversarial --data DIR`` with class folders
``8/`` and ``9/``; the base's discriminator is fine-tuned with new projection rows):

- ``kpcbn``: knowledge propagation, ``--adapter kpcbn``;
- ``bsa``: per-class γ/β for the new classes learned directly, no propagation
  (``--adapter kpcbn --adapter-option propagate=false``: S and Γ̂ frozen at the average old
  class, only the residual trains): the kpcbn paper's BSA baseline;
- ``transfergan``: the same new-class rows plus every generator weight fine-tuned
  (``--unfreeze all --lr-base 2e-4``), as TransferGAN fine-tunes the whole GAN.

Each run is evaluated every ``--eval-every`` steps (``--resume --steps`` continues it); reported:
each method's best mean FID over the two classes and the step it was reached, KMMD there, and
the first evaluated step at which it reached ``bsa``'s best FID.

    python benchmarks/classext.py [--shots 10 25 100] [--steps 1500 --eval-every 150]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _jobs import run_jobs, save_results  # noqa: E402

NEW_CLASSES = (8, 9)
METHODS: dict[str, dict[str, Any]] = {
    "kpcbn": {"adapter": "kpcbn"},
    "bsa": {"adapter": "kpcbn", "adapter_options": {"propagate": False}},
    "transfergan": {"adapter": "kpcbn", "adapter_options": {"propagate": False}, "unfreeze": ["all"],
                    "lr_base": 2e-4},
}


def split(labels: torch.Tensor, shots: int, seed: int) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Per new class: ``shots`` random training indices, and the rest (held out)."""
    g = torch.Generator().manual_seed(seed)
    train, real = {}, {}
    for c in NEW_CLASSES:
        members = torch.nonzero(labels == c).squeeze(1)
        members = members[torch.randperm(len(members), generator=g)]
        train[c], real[c] = members[:shots], members[shots:]
    return train, real


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one method on one split in stages, evaluating after each (in a worker process)."""
    from adaptkit import FitConfig, evaluate, fit, load_feature_extractor, sample_images
    from adaptkit.images import save_images
    from adaptkit.bases.data32 import load_mnist
    from adaptkit.io.run_dir import load_run
    from adaptkit.train import resume_config
    from adaptkit.train.progress import SilentReporter

    started = time.perf_counter()
    mnist = load_mnist(Path(job["mnist"]), digits=NEW_CLASSES)
    train, real = split(mnist.labels, job["shots"], job["seed"])
    data = Path(job["work"]) / "data" / job["key"]
    for c in NEW_CLASSES:
        save_images(mnist.images[train[c]], data / str(c))
    out = Path(job["work"]) / job["key"]
    extractor, _ = load_feature_extractor("embedded")
    curve = []
    for step in range(job["eval_every"], job["steps"] + 1, job["eval_every"]):
        if curve:
            config = resume_config(out, steps=step)
        else:
            config = FitConfig(data=str(data), out=str(out), objective="adversarial", seed=job["seed"], steps=step,
                               device="cpu", quiet=True, overwrite=True, **METHODS[job["method"]])
        fit(config, reporter=SilentReporter())
        base = load_run(out).base
        point: dict[str, float] = {"step": step}
        for c in NEW_CLASSES:
            generated = sample_images(base, job["samples"], class_id=str(c), seed=job["seed"])
            report = evaluate(generated, mnist.images[real[c]], extractor=extractor, diversity="feature-maps",
                              seed=job["seed"])
            point[f"fid_{c}"], point[f"kmmd_{c}"] = report.fid, report.kmmd
        point["fid"] = sum(point[f"fid_{c}"] for c in NEW_CLASSES) / len(NEW_CLASSES)
        point["kmmd"] = sum(point[f"kmmd_{c}"] for c in NEW_CLASSES) / len(NEW_CLASSES)
        curve.append(point)
    return {"curve": curve, "seconds": round(time.perf_counter() - started, 1)}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (shots, method): best mean FID and its step, KMMD there, per-class FIDs there, and the
    first step reaching bsa's best FID of the same shots (curves averaged over seeds)."""
    curves: dict[tuple[int, str], list[list[dict]]] = {}
    for r in rows:
        curves.setdefault((r["shots"], r["method"]), []).append(r["curve"])
    mean_curves = {key: [{k: sum(c[i][k] for c in runs) / len(runs) for k in runs[0][i]}
                         for i in range(len(runs[0]))] for key, runs in curves.items()}
    out = []
    for (shots, method), curve in mean_curves.items():
        best = min(curve, key=lambda p: p["fid"])
        target = min(p["fid"] for p in mean_curves[(shots, "bsa")]) if (shots, "bsa") in mean_curves else None
        reached = next((int(p["step"]) for p in curve if target is not None and p["fid"] <= target), None)
        out.append({"shots": shots, "method": method, "seeds": len(curves[(shots, method)]),
                    "best_fid": best["fid"], "best_step": int(best["step"]), "kmmd_at_best": best["kmmd"],
                    **{f"fid_{c}_at_best": best[f"fid_{c}"] for c in NEW_CLASSES},
                    "steps_to_bsa_best": reached, "final_fid": curve[-1]["fid"], "curve": curve})
    return out


def plot_curves(summary: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per image count: each method's mean FID against the training step."""
    from adaptkit.plot import plot_losses

    paths = []
    for shots in sorted({s["shots"] for s in summary}):
        runs = [s for s in summary if s["shots"] == shots]
        steps = [int(p["step"]) for p in runs[0]["curve"]]
        paths.append(plot_losses(steps, {s["method"]: [p["fid"] for p in s["curve"]] for s in runs},
                                 folder / f"classext_fid_{shots}.png",
                                 title=f"FID of the new classes 8 and 9 ({shots} images per class)"))
    return paths


def comparison_grid(jobs: list[dict[str, Any]], path: Path, per_row: int = 12) -> Path:
    """One PNG for the first seed's largest image count: real 8s and 9s (held out), then each
    method's samples of 8 and of 9, one row each."""
    from adaptkit import sample_images, save_grid
    from adaptkit.bases.data32 import load_mnist
    from adaptkit.io.run_dir import load_run

    shots = max(j["shots"] for j in jobs)
    cell = [j for j in jobs if j["shots"] == shots and j["seed"] == jobs[0]["seed"]]
    mnist = load_mnist(Path(cell[0]["mnist"]), digits=NEW_CLASSES)
    _, real = split(mnist.labels, shots, cell[0]["seed"])
    rows = [mnist.images[real[c][:per_row]] for c in NEW_CLASSES]
    for j in cell:
        base = load_run(Path(j["work"]) / j["key"]).base
        rows += [sample_images(base, per_row, class_id=str(c), seed=j["seed"]) for c in NEW_CLASSES]
    return save_grid(torch.cat(rows), path, nrow=per_row)


def render(summary: list[dict[str, Any]]) -> tuple[Table, str]:
    head = ["images / class", "method", "best FID ↓ (8, 9)", "at step", "KMMD there ↓",
            "steps to bsa's best FID", "FID at the end"]
    table = Table(title="class extension of digits32 with 8 and 9 (FID/KMMD: mean of the two new classes)")
    for h in head:
        table.add_column(h, justify="left" if h == "method" else "right")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = [str(s["shots"]), s["method"],
                 f"{s['best_fid']:.1f} ({s['fid_8_at_best']:.1f}, {s['fid_9_at_best']:.1f})",
                 str(s["best_step"]), f"{s['kmmd_at_best']:.3f}",
                 "not reached" if s["steps_to_bsa_best"] is None else str(s["steps_to_bsa_best"]),
                 f"{s['final_fid']:.1f}"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    return table, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--shots", nargs="+", type=int, default=[10, 25, 100], help="training images per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=1500, help="generator steps of each run")
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--samples", type=int, default=500, help="generated images per class and evaluation")
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--work", type=Path, default=Path("runs/classext"), help="run folders and job cache")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/classext.json"))
    parser.add_argument("--plots", type=Path, default=Path("docs/images"), help="where the FID curves go")
    args = parser.parse_args()

    mnist = args.data / "mnist-test"
    if not mnist.is_dir():
        parser.error(f"{mnist} not found: pass --data (the folder holding mnist-test/)")
    jobs = [{"key": f"{s}-s{seed}-{m}-{args.steps}-{args.eval_every}", "shots": s, "seed": seed, "method": m,
             "steps": args.steps, "eval_every": args.eval_every, "samples": args.samples, "mnist": str(mnist),
             "work": str(args.work)}
            for seed in args.seeds for s in args.shots for m in args.methods]
    started = time.perf_counter()
    rows = run_jobs(jobs, run_job, args.work / "results", args.workers, args.threads)
    wall = time.perf_counter() - started
    summary = summarize(rows)
    table, markdown = render(summary)
    Console().print(table)
    print(f"wall time {wall / 60:.1f} min for {len(jobs)} runs ({sum(r['seconds'] for r in rows) / 60:.1f} "
          f"run-minutes, {args.workers} workers × {args.threads} thread)")
    command = ("python benchmarks/classext.py " + " ".join(sys.argv[1:])).strip()
    save_results(args.json, {"command": command, "torch": torch.__version__, "wall_time_s": round(wall, 1),
                             "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                             "summary": summary, "runs": rows}, markdown)
    plots = [*plot_curves(summary, args.plots), comparison_grid(jobs, args.plots / "classext_samples.png")]
    print(f"wrote {args.json}, {args.json.with_suffix('.md')} and {', '.join(map(str, plots))}")


if __name__ == "__main__":
    main()
