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

Variants (``--variants``): ``default``, the adversarial objective's defaults (``--augment on``,
``--ema-decay 0.999``, ``--freeze-d 0``); ``plain``, ``--augment off --ema-decay 0`` (the training
before those options existed); ``augment`` and ``ema``, one of the two without the other
(``--ema-decay 0``, ``--augment off``); ``freezed2``, the defaults with the discriminator's first
two of four blocks frozen (``--freeze-d 2``, FreezeD).

Each run is evaluated every ``--eval-every`` steps (``--resume --steps`` continues it), and step 0
(each new class as the average old class, where ``kpcbn`` and ``bsa`` both start) once per
(shots, seed); reported per (shots, method, variant), mean ± std over seeds: the best mean FID
over the two classes and the step it was reached, KMMD there, the first evaluated step at which
the run reached the best FID of ``bsa`` with the same seed and variant, the FID change over the
last three evaluations, and the mean and largest pixel change of the old classes' images (0–7, 8
fixed latents each, pixels in [-1, 1]) from the base's, the most over all evaluations and seeds: 0
for the adapters, TransferGAN's drift.

    python benchmarks/classext.py --shots 25 --methods kpcbn bsa --variants default plain --seeds 0 1 2

Results per job are cached in ``--work`` and kept in ``--json`` (rewritten after each finished
job, with the ``.md`` table and the pictures): a rerun skips the jobs either holds, so a later
invocation (another seed) extends the committed results.
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

from _jobs import all_rows, mean_std, recorded_jobs, run_jobs, save_extended  # noqa: E402

NEW_CLASSES = (8, 9)
OLD_CLASSES = range(8)
METHODS: dict[str, dict[str, Any]] = {
    "kpcbn": {"adapter": "kpcbn"},
    "bsa": {"adapter": "kpcbn", "adapter_options": {"propagate": False}},
    "transfergan": {"adapter": "kpcbn", "adapter_options": {"propagate": False}, "unfreeze": ["all"],
                    "lr_base": 2e-4},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "plain": {"augment": "off", "ema_decay": 0.0},
    "augment": {"ema_decay": 0.0},
    "ema": {"augment": "off"},
    "freezed2": {"freeze_d": 2},
}
START = "start"
"""The job evaluating step 0 of each (shots, seed), untrained (no method, no variant)."""


def split(labels: torch.Tensor, shots: int, seed: int) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Per new class: ``shots`` random training indices, and the rest (held out)."""
    g = torch.Generator().manual_seed(seed)
    train, real = {}, {}
    for c in NEW_CLASSES:
        members = torch.nonzero(labels == c).squeeze(1)
        members = members[torch.randperm(len(members), generator=g)]
        train[c], real[c] = members[:shots], members[shots:]
    return train, real


def start_base() -> Any:
    """``digits32`` with a fresh ``kpcbn`` adapter for 8 and 9: every run's step 0 (each new class
    generated as the average old class, for ``kpcbn`` and ``bsa`` alike)."""
    from adaptkit import attach_adapter
    from adaptkit.bases import load_base

    base = load_base("digits32")
    attach_adapter(base.generator, "kpcbn", num_new_classes=len(NEW_CLASSES))
    base.add_classes(len(NEW_CLASSES))
    return base


def old_outputs(base: Any) -> torch.Tensor:
    """``base``'s images of the old classes 0–7, 8 fixed latents each."""
    from adaptkit import sample_images

    return torch.cat([sample_images(base, 8, class_id=str(c), seed=0) for c in OLD_CLASSES])


def score(base: Any, step: int, job: dict[str, Any], images: torch.Tensor, real: dict[int, torch.Tensor],
          extractor: Any, reference: torch.Tensor) -> dict[str, float]:
    """FID and KMMD of each new class's samples against its held-out real images, and their means;
    ``old_drift`` and ``old_drift_mean``, the largest and the mean pixel change of the old classes'
    images from ``reference`` (the base's, :func:`old_outputs`): 0 when they are untouched."""
    from adaptkit import evaluate, sample_images

    change = (old_outputs(base) - reference).abs()
    point: dict[str, float] = {"step": step, "old_drift": change.max().item(), "old_drift_mean": change.mean().item()}
    for c in NEW_CLASSES:
        generated = sample_images(base, job["samples"], class_id=str(c), seed=job["seed"])
        report = evaluate(generated, images[real[c]], extractor=extractor, diversity="feature-maps", seed=job["seed"])
        point[f"fid_{c}"], point[f"kmmd_{c}"] = report.fid, report.kmmd
    point["fid"] = sum(point[f"fid_{c}"] for c in NEW_CLASSES) / len(NEW_CLASSES)
    point["kmmd"] = sum(point[f"kmmd_{c}"] for c in NEW_CLASSES) / len(NEW_CLASSES)
    return point


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one method on one split in stages, evaluating after each (in a worker process); the
    ``start`` job evaluates step 0 only."""
    from adaptkit import FitConfig, fit, load_feature_extractor
    from adaptkit.bases import load_base
    from adaptkit.images import save_images
    from adaptkit.bases.data32 import load_mnist
    from adaptkit.io.run_dir import load_run
    from adaptkit.train import resume_config
    from adaptkit.train.progress import SilentReporter

    started = time.perf_counter()
    mnist = load_mnist(Path(job["mnist"]), digits=NEW_CLASSES)
    train, real = split(mnist.labels, job["shots"], job["seed"])
    extractor, _ = load_feature_extractor("embedded")
    reference = old_outputs(load_base("digits32"))
    if job["method"] == START:
        curve = [score(start_base(), 0, job, mnist.images, real, extractor, reference)]
        return {"curve": curve, "fit_s": round(time.perf_counter() - started, 1)}
    data = Path(job["work"]) / "data" / job["key"]
    for c in NEW_CLASSES:
        save_images(mnist.images[train[c]], data / str(c))
    out = Path(job["work"]) / job["key"]
    curve = []
    for step in range(job["eval_every"], job["steps"] + 1, job["eval_every"]):
        if curve:
            config = resume_config(out, steps=step)
        else:
            config = FitConfig(data=str(data), out=str(out), objective="adversarial", seed=job["seed"], steps=step,
                               device="cpu", quiet=True, overwrite=True, **METHODS[job["method"]],
                               **VARIANTS[job["variant"]])
        fit(config, reporter=SilentReporter())
        curve.append(score(load_run(out).base, step, job, mnist.images, real, extractor, reference))
    return {"curve": curve, "fit_s": round(time.perf_counter() - started, 1)}


def _reached(curve: list[dict[str, float]], target: float) -> int | None:
    """The first evaluated step whose FID is at most ``target`` (None: never)."""
    return next((int(p["step"]) for p in curve if p["fid"] <= target), None)


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``shots/method/variant`` (``shots/start/-`` for step 0): the seeds, mean ± std over them
    of the best FID, its step, KMMD and per-class FIDs there, the final FID, and the mean curve;
    for trained runs also the FID change over the last three evaluations and, per seed, the step
    reaching the best FID of ``bsa`` (same shots, seed, variant; None: not reached or no such bsa
    run), whether the best was the last evaluation and whether it beat step 0 (None: not measured)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        runs.setdefault(f"{r['shots']}/{r['method']}/{r['variant']}", []).append(r)
    bsa_best = {(r["shots"], r["seed"], r["variant"]): min(p["fid"] for p in r["curve"])
                for r in rows if r["method"] == "bsa"}
    start = {(r["shots"], r["seed"]): r["curve"][0]["fid"] for r in rows if r["method"] == START}
    out = {}
    for key, group in runs.items():
        best = [min(r["curve"], key=lambda p: p["fid"]) for r in group]
        stat = lambda values: dict(zip(("mean", "std"), mean_std(values)))  # noqa: E731
        drifts = [p for r in group for p in r["curve"] if "old_drift" in p]
        out[key] = {
            "seeds": [r["seed"] for r in group],
            "old_drift": max(p["old_drift"] for p in drifts) if drifts else None,
            "old_drift_mean": max(p["old_drift_mean"] for p in drifts) if drifts else None,
            **{k: stat([b[k] for b in best]) for k in ("fid", "kmmd", *(f"fid_{c}" for c in NEW_CLASSES))},
            "best_step": stat([b["step"] for b in best]),
            "best_steps": [int(b["step"]) for b in best],
            "final_fid": stat([r["curve"][-1]["fid"] for r in group]),
            "steps": int(group[0]["curve"][-1]["step"]),
            "mean_curve": [{"step": p["step"], "fid": sum(r["curve"][i]["fid"] for r in group) / len(group)}
                           for i, p in enumerate(group[0]["curve"])],
        }
        if group[0]["method"] == START:
            continue
        targets = [bsa_best.get((r["shots"], r["seed"], r["variant"])) for r in group]
        out[key] |= {
            "last3_change": stat([r["curve"][-1]["fid"] - r["curve"][-3]["fid"] for r in group]),
            "best_at_last": [b["step"] == r["curve"][-1]["step"] for b, r in zip(best, group)],
            "steps_to_bsa_best": [None if t is None else _reached(r["curve"], t) for r, t in zip(group, targets)],
            "beat_start": [None if (r["shots"], r["seed"]) not in start else b["fid"] < start[(r["shots"], r["seed"])]
                           for b, r in zip(best, group)],
        }
    return out


def claims(summary: dict[str, dict[str, Any]]) -> list[str]:
    """kpcbn against bsa per (shots, variant) where both ran: steps to bsa's best per seed, the
    ratio bsa's best step / kpcbn's, best FIDs, and whether the curves had flattened."""
    out = []
    for key, k in summary.items():
        shots, method, variant = key.split("/")
        b = summary.get(f"{shots}/bsa/{variant}")
        if method != "kpcbn" or b is None:
            continue
        paired = [(kr, bs) for s, kr in zip(k["seeds"], k["steps_to_bsa_best"]) if s in b["seeds"]
                  for bs in [b["best_steps"][b["seeds"].index(s)]]]
        ratios = [f"{bs / kr:.1f}×" if kr else "not reached" for kr, bs in paired]
        zero = summary.get(f"{shots}/{START}/-")
        versus_start = "" if zero is None else (
            f"; step 0 (the average old class) FID {zero['fid']['mean']:.1f} ± {zero['fid']['std']:.1f}, best below "
            f"it: kpcbn {sum(x is True for x in k['beat_start'])}/{sum(x is not None for x in k['beat_start'])}, "
            f"bsa {sum(x is True for x in b['beat_start'])}/{sum(x is not None for x in b['beat_start'])} seeds")
        out.append(
            f"{variant}, {shots} images/class, seeds {b['seeds']}, {k['steps']} steps: kpcbn reached bsa's best FID "
            f"(same seed) in {sum(kr is not None for kr, _ in paired)}/{len(paired)} seeds, at steps "
            f"{[kr for kr, _ in paired]} vs bsa's best at {[bs for _, bs in paired]} (bsa's step / kpcbn's: "
            f"{', '.join(ratios)}); best FID kpcbn {k['fid']['mean']:.1f} ± {k['fid']['std']:.1f} vs bsa "
            f"{b['fid']['mean']:.1f} ± {b['fid']['std']:.1f}; FID change over the last 3 evaluations kpcbn "
            f"{k['last3_change']['mean']:+.1f} ± {k['last3_change']['std']:.1f}, bsa {b['last3_change']['mean']:+.1f} "
            f"± {b['last3_change']['std']:.1f}; best at the last evaluation: kpcbn {sum(k['best_at_last'])}/"
            f"{len(k['seeds'])}, bsa {sum(b['best_at_last'])}/{len(b['seeds'])} seeds{versus_start}")
    return out


def plot_curves(summary: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per image count: each (method, variant)'s FID against the step, mean over its seeds,
    and step 0's as a flat line."""
    from adaptkit.plot import plot_losses

    paths = []
    for shots in sorted({int(key.split("/")[0]) for key in summary}):
        cells = {key: s for key, s in summary.items() if int(key.split("/")[0]) == shots and START not in key}
        if not cells:
            continue
        steps = [int(p["step"]) for p in next(iter(cells.values()))["mean_curve"]]
        series = {f"{key.split('/')[1]} {key.split('/')[2]} n={len(s['seeds'])}":
                  [p["fid"] for p in s["mean_curve"]] for key, s in cells.items()}
        if (zero := summary.get(f"{shots}/{START}/-")) is not None:
            series[f"step 0 n={len(zero['seeds'])}"] = [zero["fid"]["mean"]] * len(steps)
        paths.append(plot_losses(steps, series,
                                 folder / f"classext_fid_{shots}.png",
                                 title=f"FID of the new classes 8 and 9 ({shots} images per class, mean over seeds)"))
    return paths


def comparison_grids(rows: list[dict[str, Any]], folder: Path, per_row: int = 12) -> list[Path]:
    """One PNG per image count among the finished runs whose folders exist,
    ``classext_samples_<shots>.png``, for that count's lowest seed: real 8s and 9s (held out), step
    0's, then each run's samples of 8 and of 9, one row each, in ``rows`` order."""
    from adaptkit import sample_images, save_grid
    from adaptkit.bases.data32 import load_mnist
    from adaptkit.io.run_dir import load_run

    present = [r for r in rows if (Path(r["work"]) / r["key"]).is_dir()]
    if not present:
        return []
    mnist = load_mnist(Path(present[0]["mnist"]), digits=NEW_CLASSES)
    start = start_base()
    paths = []
    for shots in sorted({r["shots"] for r in present}):
        seed = min(r["seed"] for r in present if r["shots"] == shots)
        cell = [r for r in present if r["shots"] == shots and r["seed"] == seed]
        _, real = split(mnist.labels, shots, seed)
        images = [mnist.images[real[c][:per_row]] for c in NEW_CLASSES]
        images += [sample_images(start, per_row, class_id=str(c), seed=seed) for c in NEW_CLASSES]
        for r in cell:
            base = load_run(Path(r["work"]) / r["key"]).base
            images += [sample_images(base, per_row, class_id=str(c), seed=seed) for c in NEW_CLASSES]
        paths.append(save_grid(torch.cat(images), folder / f"classext_samples_{shots}.png", nrow=per_row))
    return paths


def render(summary: dict[str, dict[str, Any]]) -> tuple[Table, str]:
    """The rich table and its markdown twin (mean ± std over the seeds listed)."""
    head = ["images / class", "variant", "method", "seeds", "best FID ↓", "(8, 9) there", "at step", "KMMD there ↓",
            "steps to bsa's best FID (per seed)", "FID at the end", "ΔFID last 3 evals", "best at last eval",
            "old classes' change, mean / max"]
    table = Table(title="class extension of digits32 with 8 and 9 (FID/KMMD: mean of the two new classes)")
    for h in head:
        table.add_column(h, justify="left" if h in ("variant", "method") else "right")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def ms(stat: dict[str, float], digits: int, sign: str = "") -> str:
        return f"{stat['mean']:{sign}.{digits}f} ± {stat['std']:.{digits}f}"
    for key, s in sorted(summary.items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0].split("/")[2])):
        shots, method, variant = key.split("/")
        cells = [shots, variant, "step 0" if method == START else method, " ".join(map(str, s["seeds"])),
                 ms(s["fid"], 1), f"{s['fid_8']['mean']:.1f}, {s['fid_9']['mean']:.1f}", ms(s["best_step"], 0),
                 ms(s["kmmd"], 3)]
        cells += ["–"] * 4 if method == START else [
            ", ".join("–" if v is None else str(v) for v in s["steps_to_bsa_best"]), ms(s["final_fid"], 1),
            ms(s["last3_change"], 1, "+"), f"{sum(s['best_at_last'])}/{len(s['seeds'])}"]
        cells.append("–" if s.get("old_drift") is None else f"{s['old_drift_mean']:.3g} / {s['old_drift']:.3g}")
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    return table, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--shots", nargs="+", type=int, default=[10, 25, 100], help="training images per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="default: the adversarial defaults; plain: --augment off --ema-decay 0; "
                             "augment: --ema-decay 0; ema: --augment off; freezed2: --freeze-d 2")
    parser.add_argument("--steps", type=int, default=1500, help="generator steps of each run")
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--samples", type=int, default=500, help="generated images per class and evaluation")
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--work", type=Path, default=Path("runs/classext"), help="run folders and job cache")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/classext.json"))
    parser.add_argument("--plots", type=Path, default=Path("docs/images"), help="where the FID curves and samples go")
    args = parser.parse_args()

    mnist = args.data / "mnist-test"
    if not mnist.is_dir():
        parser.error(f"{mnist} not found: pass --data (the folder holding mnist-test/)")
    if args.steps < 3 * args.eval_every:
        parser.error("--steps must allow at least 3 evaluations (--eval-every)")
    jobs = [{"key": f"{s}-s{seed}-{m}-{v}-{args.steps}-{args.eval_every}", "shots": s, "seed": seed, "method": m,
             "variant": v, "steps": args.steps, "eval_every": args.eval_every, "samples": args.samples,
             "mnist": str(mnist), "work": str(args.work)}
            for seed in args.seeds for s in args.shots for v in args.variants for m in args.methods]  # seed-major
    jobs += [{"key": f"{s}-s{seed}-{START}", "shots": s, "seed": seed, "method": START, "variant": "-",
              "samples": args.samples, "mnist": str(mnist), "work": str(args.work)}
             for seed in args.seeds for s in args.shots]
    started = time.perf_counter()
    recorded = recorded_jobs(args.json)

    def report(finished: list[dict[str, Any]]) -> None:
        rows = all_rows(recorded, finished)
        summary = summarize(rows)
        table, markdown = render(summary)
        checks = claims(summary)
        Console().print(table, *checks, sep="\n")
        save_extended(args.json, "classext.py", args, time.perf_counter() - started, rows, summary,
                      markdown + "\n" + "\n".join(f"- {c}" for c in checks) + "\n", claims=checks)
        plots = [*plot_curves(summary, args.plots), *comparison_grids(rows, args.plots)]
        print(f"wrote {args.json}, {args.json.with_suffix('.md')} and {', '.join(map(str, plots))}")

    report(run_jobs(jobs, run_job, args.work / "results", args.workers, args.threads, recorded, on_result=report))


if __name__ == "__main__":
    main()
