"""Few-shot domain adaptation of a real RGB base: ``digiface64`` (DigiFace-1M faces) to the BSA
paper's anime and human-face sets (``bsa-fewshot/anime``, ``bsa-fewshot/face``, 50 images each):
train on 25 drawn with the seed, score samples against the other 25 (KMMD, mean variance, FID,
LPIPS diversity with the feature network ``adaptkit eval`` picks and names: Inception-v3 when its
weights are on disk, else the shipped ``features_rgb32``).

Methods: ``base`` (unadapted), ``bsa``, ``pwgconv-r8``, ``update-all`` (every generator weight,
same ``glo`` objective); ``bsa-adv`` and ``pwgconv-r8-adv``, the adapters trained with ``--objective
adversarial`` against a discriminator trained from scratch (the base ships none); each is
``adaptkit fit`` at its defaults except what ``METHODS`` names. Each ``glo`` run is scored twice:
samples from N(0, I) (the base's sampling), and from the Gaussian fitted to the run's learned
latents (``adaptkit eval --latents learned``; rows "learned z"); adversarial runs learn no latents.

    python benchmarks/fewshot_rgb.py --seeds 0 --steps 1000 --workers 2

Results per job are cached in ``--work`` and kept in ``--json``: a rerun skips the jobs either
holds, so a later invocation (another seed) extends the committed results. The table (every job in
``--json``) goes to the console, ``--json`` and the ``.md`` beside it; ``--grid`` gets, per target,
a row of training images, then each method's samples (this invocation's first seed, when its run
folders are in ``--work``). Each job's samples are also scored for memorization against its own 25
training images (the memorization ratio, ≈ 1 for new images, → 0 for copies; ``adaptkit eval
--train``); ``--rescore`` scores the invocation's recorded jobs again from their run folders
without fitting (jobs whose run folder is gone keep their record).
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

TARGETS = ("anime", "face")
METHODS: dict[str, dict[str, Any]] = {
    "base": {},
    "bsa": {"adapter": "bsa"},
    "pwgconv-r8": {"adapter": "pwgconv", "adapter_options": {"ratio": 8}},
    "update-all": {"adapter": "none", "unfreeze": ["all"]},
    "bsa-adv": {"adapter": "bsa", "objective": "adversarial"},
    "pwgconv-r8-adv": {"adapter": "pwgconv", "adapter_options": {"ratio": 8}, "objective": "adversarial"},
}
METRICS = (("kmmd", "KMMD ↓", 3), ("mean_variance", "mean var. →1", 3), ("fid", "FID ↓", 1),
           ("lpips_diversity", "LPIPS div.", 3), ("memorization_ratio", "memorization →1", 3))
SHOTS = 25


def load_target(folder: Path, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, real): ``SHOTS`` images of ``folder`` drawn with ``seed``, and the rest, at 64×64."""
    from adaptkit.data import load_image_folder

    images = load_image_folder(folder, channels=3, resolution=64).images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return images[order[:SHOTS]], images[order[SHOTS:]]


def job_samples(job: dict[str, Any], n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` samples of the job's generator per latent source: ``normal`` (N(0, I), the base's own
    sampling) and, for runs that learned latents, ``learned`` (the Gaussian fitted to them)."""
    from adaptkit import sample_images, sample_run
    from adaptkit.bases import load_base
    from adaptkit.io.run_dir import load_run
    from adaptkit.sample import LATENT_SOURCES

    if job["method"] == "base":
        return {"normal": sample_images(load_base("digiface64"), n, seed=seed)}
    run = load_run(Path(job["work"]) / job["key"])
    sources = LATENT_SOURCES if run.latents is not None else ("normal",)
    return {source: sample_run(run, n, seed=seed, latents=source) for source in sources}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Fit one method on one (target, seed) in a worker process and score it (:func:`score_job`)."""
    from adaptkit import FitConfig, fit
    from adaptkit.images import save_images
    from adaptkit.train.progress import SilentReporter

    started = time.perf_counter()
    if job["method"] != "base":
        data = Path(job["work"]) / "data" / job["key"]
        save_images(load_target(Path(job["data"]) / job["target"], job["seed"])[0], data)
        fit(FitConfig(data=str(data), out=str(Path(job["work"]) / job["key"]), base="digiface64", seed=job["seed"],
                      device="cpu", quiet=True, overwrite=True, **{**METHODS[job["method"]], **job["fit"]}),
            reporter=SilentReporter())
    fit_s = time.perf_counter() - started
    return {**score_job(job), "fit_s": round(fit_s, 1)}


def score_job(job: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the samples of a job's generator (the base, or its run folder's) against the
    target's other 25 images, and their memorization against the job's 25 training images, for
    each latent source (the ``learned`` metrics under the key ``learned``); in a worker process,
    or with ``--rescore`` for a job fitted before."""
    from adaptkit import evaluate
    from adaptkit.io.run_dir import load_run

    train, real = load_target(Path(job["data"]) / job["target"], job["seed"])
    reports = {source: evaluate(images, real, train=train, seed=job["seed"])
               for source, images in job_samples(job, job["samples"], job["seed"]).items()}
    report = reports["normal"]
    learned = {}
    if "learned" in reports:
        latents = load_run(Path(job["work"]) / job["key"]).latents
        learned = {"learned": {m: getattr(reports["learned"], m) for m, _, _ in METRICS},
                   "latent_norm": latents.norm(dim=1).mean().item()}
    return {**{m: getattr(report, m) for m, _, _ in METRICS}, "lpips_diversity_real": report.lpips_diversity_real,
            "near_copies": report.near_copies, "real_images": len(real), "features": report.extractor,
            "diversity_network": report.lpips_distance, **learned}


def comparison_grid(jobs: list[dict[str, Any]], path: Path, per_row: int = 10) -> Path:
    """Per target (first seed): its training images, then ``per_row`` samples of each method from
    N(0, I), then those of each fitted method from its learned latents' Gaussian."""
    from adaptkit import save_grid

    rows = []
    first_seed = jobs[0]["seed"]
    for target in dict.fromkeys(j["target"] for j in jobs):
        cell = [j for j in jobs if j["target"] == target and j["seed"] == first_seed]
        rows.append(load_target(Path(cell[0]["data"]) / target, first_seed)[0][:per_row])
        samples = [job_samples(j, per_row, first_seed) for j in cell]
        rows += [s["normal"] for s in samples] + [s["learned"] for s in samples if "learned" in s]
    return save_grid(torch.cat(rows), path, nrow=per_row)


def table(rows: list[dict[str, Any]]) -> tuple[Table, str, dict[str, Any]]:
    """The rich table, its markdown twin and the aggregated numbers (mean, std per metric)."""
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        cells[(r["target"], r["method"])].append(r)
    head = ["target", "method", "seeds", *[t for _, t, _ in METRICS]]
    rich_table = Table(title=f"digiface64, {SHOTS} shots (mean ± std over seeds)")
    for h in head:
        rich_table.add_column(h, justify="left" if h in ("target", "method") else "right")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    summary = {}
    for (target, method), group in cells.items():
        for name, values in ((method, group), (f"{method}, learned z", [g["learned"] for g in group if "learned" in g])):
            if not values:
                continue
            shown = [fmt([v.get(m, math.nan) for v in values], d) for m, _, d in METRICS]
            rich_table.add_row(target, name, str(len(values)), *shown)
            lines.append(f"| {target} | {name} | {len(values)} | " + " | ".join(shown) + " |")
            summary[f"{target}/{name}"] = {
                m: dict(zip(("mean", "std"), mean_std([v.get(m, math.nan) for v in values]))) for m, _, _ in METRICS}
    return rich_table, "\n".join(lines) + "\n", summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bsa-fewshot"),
                        help="the folder holding anime/ and face/")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=1000, help="fit steps (adaptkit fit's default)")
    parser.add_argument("--samples", type=int, default=200, help="generated images per evaluation")
    parser.add_argument("--workers", type=int, default=2, help="jobs in parallel")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--work", type=Path, default=Path("runs/fewshot_rgb"), help="run folders and job cache")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/fewshot_rgb.json"))
    parser.add_argument("--rescore", action="store_true",
                        help="score the recorded jobs again from their run folders (nothing is fit), e.g. "
                             "after a metric was added")
    parser.add_argument("--grid", type=Path, default=Path("docs/images/fewshot_rgb_samples.png"))
    args = parser.parse_args()

    missing = [t for t in args.targets if not (args.data / t).is_dir()]
    if missing:
        parser.error(f"{args.data / missing[0]} not found: pass --data (the folder holding anime/ and face/)")
    key = lambda t, seed, m: f"{t}-s{seed}-{m}" + (f"-{args.steps}" if m != "base" else "")  # noqa: E731
    jobs = [{"key": key(t, seed, m), "target": t, "seed": seed, "method": m,
             "samples": args.samples, "data": str(args.data), "work": str(args.work), "fit": {"steps": args.steps}}
            for seed in args.seeds for t in args.targets for m in args.methods]
    started = time.perf_counter()
    recorded = recorded_jobs(args.json)
    rows = fit_or_rescore(jobs, run_job, score_job, args, recorded)
    wall = time.perf_counter() - started
    rich_table, markdown, summary = table(rows)
    Console().print(rich_table)
    print(f"features: {rows[0]['features']}")
    save_extended(args.json, "fewshot_rgb.py", args, wall, rows, summary, markdown)
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    first = [j for j in jobs if j["seed"] == jobs[0]["seed"]]
    if all(j["method"] == "base" or (Path(j["work"]) / j["key"]).is_dir() for j in first):
        print(f"wrote {comparison_grid(first, args.grid)}")
    else:
        print(f"no grid: the run folders of seed {jobs[0]['seed']} are not in {args.work}")

if __name__ == "__main__":
    main()
