"""Few-shot domain adaptation quality: adapt the embedded base ``digits32`` to Omniglot alphabets
from 25, 50 or 100 drawings with each method, and score samples against the alphabet's remaining
drawings (KMMD, mean variance, FID, LPIPS diversity; embedded ``features32`` extractor), over
several seeds.

Methods (default: ``HEADLINE``): ``base`` (the unadapted base: the floor), ``bsa`` (fit's default
adapter learning rate 0.05; ``bsa-lr0.01``, ``bsa-lr0.2``), ``update-all`` (fine-tune every
generator weight with the same ``glo`` objective, the BSA paper's baseline; fit's lr 1e-4, chosen by
the sweep ``update-all-lr3e-5``/``update-all-lr3e-4`` on a dev alphabet), ``pwgconv-rR`` (ratio R;
its recommended rate 5e-4; ``pwgconv-r8-lr2e-4``, ``pwgconv-r8-lr2e-3``). Every fit is ``adaptkit fit`` with its defaults except the ones named here; the
training class of the conditional base is ``--class`` (every drawing is fed as that class). Each
(alphabet, shots, seed) draws its training drawings at random; the rest of the alphabet is the
real set; every method of that cell sees the same split.

    python benchmarks/fewshot.py                                   # everything (hours on 2 cores)
    python benchmarks/fewshot.py --alphabets Latin Korean --workers 2

Each job's samples are also scored for memorization against its own training drawings (the
memorization ratio, ≈ 1 for new drawings, → 0 for copies; ``adaptkit eval --train``).

Results per job are cached in ``--work`` and kept in ``--json``: a rerun skips the jobs either
holds, so a later invocation (another seed, another alphabet) extends the committed results.
``--rescore`` scores the invocation's recorded jobs again from their run folders without fitting
(the same numbers, plus any metric added since: jobs recorded before the memorization score; jobs
whose run folder is not in ``--work`` keep their record). The
table (every job in ``--json``) goes to the console, ``--json`` and the ``.md`` beside it; the
sample grid is drawn for this invocation's first cell when its run folders are in ``--work``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _jobs import fit_or_rescore, fmt, mean_std, recorded_jobs, save_extended  # noqa: E402

ALPHABETS = ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin")
METHODS: dict[str, dict[str, Any]] = {
    "bsa": {"adapter": "bsa"},
    "bsa-lr0.01": {"adapter": "bsa", "lr_adapter": 0.01},
    "bsa-lr0.2": {"adapter": "bsa", "lr_adapter": 0.2},
    "update-all": {"adapter": "none", "unfreeze": ["all"]},
    "update-all-lr3e-5": {"adapter": "none", "unfreeze": ["all"], "lr_base": 3e-5},
    "update-all-lr3e-4": {"adapter": "none", "unfreeze": ["all"], "lr_base": 3e-4},
    "base": {},
    "pwgconv-r2": {"adapter": "pwgconv", "adapter_options": {"ratio": 2}},
    "pwgconv-r4": {"adapter": "pwgconv", "adapter_options": {"ratio": 4}},
    "pwgconv-r8": {"adapter": "pwgconv", "adapter_options": {"ratio": 8}},
    "pwgconv-r8-lr2e-4": {"adapter": "pwgconv", "adapter_options": {"ratio": 8}, "lr_adapter": 2e-4},
    "pwgconv-r8-lr2e-3": {"adapter": "pwgconv", "adapter_options": {"ratio": 8}, "lr_adapter": 2e-3},
}
HEADLINE = ("base", "bsa", "pwgconv-r8", "update-all")
"""The methods run by default (the others: learning-rate and ratio variants)."""
METRICS = (("kmmd", "KMMD ↓", 3), ("mean_variance", "mean var. →1", 3), ("fid", "FID ↓", 1),
           ("lpips_diversity", "LPIPS div.", 3), ("memorization_ratio", "memorization →1", 3))


def split(n: int, shots: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, real) of one cell: ``shots`` random drawings, and the rest."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:shots], order[shots:]


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Fit one method on one cell (in a worker process) and evaluate its samples."""
    from adaptkit import FitConfig, fit
    from adaptkit.images import save_images
    from adaptkit.bases.data32 import load_omniglot
    from adaptkit.train.progress import SilentReporter

    started = time.perf_counter()
    images = load_omniglot(Path(job["zip"]), alphabets=[job["alphabet"]]).images
    train, _ = split(len(images), job["shots"], job["seed"])
    if job["method"] != "base":
        data = Path(job["work"]) / "data" / job["key"]
        save_images(images[train], data)
        settings = {**METHODS[job["method"]], **job["fit"]}
        fit(FitConfig(data=str(data), out=str(Path(job["work"]) / job["key"]), class_id=job["class_id"],
                      seed=job["seed"], device="cpu", quiet=True, overwrite=True, **settings),
            reporter=SilentReporter())
    fit_s = time.perf_counter() - started
    return {**score_job(job), "fit_s": round(fit_s, 1)}


def score_job(job: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the samples of a job's generator (the base, or its run folder's) against the rest of
    the alphabet, and their memorization against the job's training drawings (in a worker process;
    with ``--rescore``, for a job fitted before)."""
    from adaptkit import evaluate, sample_images
    from adaptkit.bases import load_base
    from adaptkit.bases.data32 import load_omniglot
    from adaptkit.io.run_dir import load_run

    images = load_omniglot(Path(job["zip"]), alphabets=[job["alphabet"]]).images
    train, real = split(len(images), job["shots"], job["seed"])
    base = load_base("digits32") if job["method"] == "base" else load_run(Path(job["work"]) / job["key"]).base
    generated = sample_images(base, job["samples"], class_id=job["class_id"], seed=job["seed"])
    report = evaluate(generated, images[real], train=images[train], extractor="embedded", diversity="feature-maps",
                      seed=job["seed"])
    return {**{m: getattr(report, m) for m, _, _ in METRICS}, "lpips_diversity_real": report.lpips_diversity_real,
            "near_copies": report.near_copies, "real_images": len(real), "features": report.extractor}


def comparison_grid(jobs: list[dict[str, Any]], path: Path, per_row: int = 12) -> Path:
    """One PNG for one cell's jobs: its training drawings, then ``per_row`` samples of each method
    (in ``--methods`` order), one row each."""
    from adaptkit import sample_images, save_grid
    from adaptkit.bases import load_base
    from adaptkit.bases.data32 import load_omniglot
    from adaptkit.io.run_dir import load_run

    first = jobs[0]
    images = load_omniglot(Path(first["zip"]), alphabets=[first["alphabet"]]).images
    rows = [images[split(len(images), first["shots"], first["seed"])[0][:per_row]]]
    for j in jobs:
        base = load_base("digits32") if j["method"] == "base" else load_run(Path(j["work"]) / j["key"]).base
        rows.append(sample_images(base, per_row, class_id=j["class_id"], seed=j["seed"]))
    return save_grid(torch.cat(rows), path, nrow=per_row)


def table(rows: list[dict[str, Any]], methods: list[str]) -> tuple[Table, str, dict[str, Any]]:
    """The rich table, its markdown twin and the aggregated numbers (mean, std per metric)."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["alphabet"], r["shots"], r["method"])].append(r)
    alphabets = list(dict.fromkeys(r["alphabet"] for r in rows))  # order of first appearance
    order = {m: i for i, m in enumerate(methods)}
    keys = sorted(cells, key=lambda k: (alphabets.index(k[0]), k[1], order.get(k[2], len(order)), k[2]))
    head = ["alphabet", "shots", "method", "seeds", *[t for _, t, _ in METRICS]]
    rich_table = Table(title="few-shot adaptation of digits32 (mean ± std over seeds)")
    for h in head:
        rich_table.add_column(h, justify="left" if h in ("alphabet", "method") else "right")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    summary = {}
    for alphabet, shots, method in keys:
        group = cells[(alphabet, shots, method)]
        values = [fmt([g.get(m, math.nan) for g in group], d) for m, _, d in METRICS]
        rich_table.add_row(alphabet, str(shots), method, str(len(group)), *values)
        lines.append(f"| {alphabet} | {shots} | {method} | {len(group)} | " + " | ".join(values) + " |")
        summary[f"{alphabet}/{shots}/{method}"] = {
            m: dict(zip(("mean", "std"), mean_std([g.get(m, math.nan) for g in group]))) for m, _, _ in METRICS}
    return rich_table, "\n".join(lines) + "\n", summary


def claims(summary: dict[str, Any], alphabets: list[str], shots: list[int], methods: list[str]) -> list[str]:
    """The papers' claims, checked cell by cell on the means (cells that were run)."""
    out = []
    def mean(a: str, s: int, m: str, metric: str) -> float:
        return summary[f"{a}/{s}/{m}"][metric]["mean"]
    def ran(a: str, s: int, *ms: str) -> bool:
        return all(f"{a}/{s}/{m}" in summary for m in ms)
    if {"bsa", "update-all"} <= set(methods) and 25 in shots:
        for a in (a for a in alphabets if ran(a, 25, "bsa", "update-all")):
            k = mean(a, 25, "bsa", "kmmd") < mean(a, 25, "update-all", "kmmd")
            v = mean(a, 25, "bsa", "mean_variance") > mean(a, 25, "update-all", "mean_variance")
            out.append(f"BSA paper, {a}, 25 shots: bsa KMMD lower than update-all: {'yes' if k else 'no'}; "
                       f"bsa mean variance higher: {'yes' if v else 'no'}")
    if {"bsa", "pwgconv-r8"} <= set(methods):
        for a in alphabets:
            run = [s for s in shots if ran(a, s, "bsa", "pwgconv-r8")]
            wins = [s for s in run if mean(a, s, "pwgconv-r8", "kmmd") <= mean(a, s, "bsa", "kmmd")]
            if run:
                out.append(f"PWG paper, {a}: pwgconv r8 KMMD ≤ bsa at {wins or 'no'} of {run} shots")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("--alphabets", nargs="+", default=list(ALPHABETS), choices=ALPHABETS)
    parser.add_argument("--shots", nargs="+", type=int, default=[25, 50, 100])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(HEADLINE), choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=1000, help="fit steps (adaptkit fit's default)")
    parser.add_argument("--lr-adapter", type=float, help="override every method's adapter learning rate")
    parser.add_argument("--class", dest="class_id", default="3", help="the base class the drawings are fed as")
    parser.add_argument("--samples", type=int, default=500, help="generated images per evaluation")
    parser.add_argument("--workers", type=int, default=2, help="jobs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--work", type=Path, default=Path("runs/fewshot"), help="run folders and job cache")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/fewshot.json"))
    parser.add_argument("--rescore", action="store_true",
                        help="score the recorded jobs again from their run folders (nothing is fit), e.g. "
                             "after a metric was added")
    parser.add_argument("--grid", type=Path, default=Path("docs/images/fewshot_samples.png"),
                        help="training drawings and each method's samples for the first cell")
    args = parser.parse_args()

    zip_path = args.data / "omniglot" / "images_background_small1.zip"
    if not zip_path.is_file():
        parser.error(f"{zip_path} not found: pass --data (the folder holding omniglot/)")
    fit_settings: dict[str, Any] = {"steps": args.steps}
    suffix = f"{args.steps}"
    if args.lr_adapter is not None:
        fit_settings["lr_adapter"] = args.lr_adapter
        suffix += f"-lr{args.lr_adapter:g}"
    jobs = []
    for seed in args.seeds:  # seed-major: a run stopped early leaves whole seeds
        for a in args.alphabets:
            for s in args.shots:
                for m in args.methods:
                    jobs.append({"key": f"{a}-{s}-s{seed}-{m}-{suffix}", "alphabet": a, "shots": s,
                                 "seed": seed, "method": m, "class_id": args.class_id, "samples": args.samples,
                                 "zip": str(zip_path), "work": str(args.work), "fit": fit_settings})
    started = time.perf_counter()
    recorded = recorded_jobs(args.json)
    rows = fit_or_rescore(jobs, run_job, score_job, args, recorded)
    wall = time.perf_counter() - started
    rich_table, markdown, summary = table(rows, args.methods)
    checks = claims(summary, list(ALPHABETS), sorted({r["shots"] for r in rows}), args.methods)
    console = Console()
    console.print(rich_table)
    for line in checks:
        console.print(line)
    save_extended(args.json, "fewshot.py", args, wall, rows, summary,
                  markdown + "\n" + "\n".join(f"- {c}" for c in checks) + "\n", claims=checks)
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    first = jobs[0]
    cell = [j for j in jobs if all(j[k] == first[k] for k in ("alphabet", "shots", "seed"))]
    if all(j["method"] == "base" or (Path(j["work"]) / j["key"]).is_dir() for j in cell):
        print(f"wrote {comparison_grid(cell, args.grid)}")
    else:
        print(f"no grid: the run folders of {first['alphabet']}/{first['shots']}/seed {first['seed']} "
              f"are not in {args.work}")


if __name__ == "__main__":
    main()
