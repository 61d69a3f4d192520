"""Where a fitted run's good-looking samples come from: the same ``benchmarks/fewshot_rgb.py`` runs
(``digiface64`` adapted to 25 images) sampled four ways and scored with ``adaptkit eval``'s metrics,
the memorization score included (against the run's 25 training images):

- ``reconstructions``: the learned latents themselves (the run's ``reconstructions.png``);
- ``blend``: a random point on the segment between two different learned latents (t ~ U(0, 1));
- ``learned``: the Gaussian fitted to the learned latents (``adaptkit sample --latents learned``);
- ``normal``: N(0, I), the base's own sampling (``adaptkit sample``).

It fits nothing: it reads the run folders ``fewshot_rgb.py`` left in ``--work`` (named
``TARGET-sSEED-METHOD-STEPS``) and draws the same train/real split from the seed.

    python benchmarks/latent_sources.py --work runs/fewshot_rgb --target anime --seed 1

Writes ``--json`` (and the ``.md`` beside it) and ``--grid``: per method, one row of 10 images per
source, in the order above.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fewshot_rgb import load_target  # noqa: E402

from adaptkit import evaluate, save_grid, sample_run  # noqa: E402
from adaptkit.io.atomic import atomic_path, write_json  # noqa: E402
from adaptkit.io.run_dir import Run, load_run  # noqa: E402
from adaptkit.sample import generate_images, seeded  # noqa: E402

SOURCES = ("reconstructions", "blend", "learned", "normal")
METRICS = (("kmmd", "KMMD ↓", 3), ("fid", "FID ↓", 1), ("kid", "KID ↓", 2), ("lpips_diversity", "LPIPS div.", 3),
           ("memorization_ratio", "memorization ratio →1", 3), ("near_copies", "near copies ↓", 2))


def blends(run: Run, n: int, seed: int) -> torch.Tensor:
    """``n`` latents on segments between two different learned latents of ``run``, t ~ U(0, 1)."""
    latents = run.latents.detach().float().cpu()
    generator = seeded(seed)
    i = torch.randint(len(latents), (n,), generator=generator)
    j = (i + 1 + torch.randint(len(latents) - 1, (n,), generator=generator)) % len(latents)
    t = torch.rand(n, 1, generator=generator)
    return (1 - t) * latents[i] + t * latents[j]


def source_images(run: Run, source: str, n: int, seed: int) -> torch.Tensor:
    """Images of ``run`` (an unconditional base's) from latent ``source``, as the run's pictures show them."""
    if source == "reconstructions":
        images = generate_images(run.base, run.latents, None)
    elif source == "blend":
        images = generate_images(run.base, blends(run, n, seed), None)
    else:
        images = sample_run(run, n, seed=seed, latents=source)
    return run.as_trained(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bsa-fewshot"))
    parser.add_argument("--work", type=Path, default=Path("runs/fewshot_rgb"), help="fewshot_rgb.py's run folders")
    parser.add_argument("--target", default="anime")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=["bsa", "pwgconv-r8"])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200, help="images per source (reconstructions: the run's 25)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/latent_sources.json"))
    parser.add_argument("--grid", type=Path, default=Path("docs/images/latent_sources.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    started = time.perf_counter()
    train, real = load_target(args.data / args.target, args.seed)
    rows, pictures = [], []
    for method in args.methods:
        run = load_run(args.work / f"{args.target}-s{args.seed}-{method}-{args.steps}")
        for source in SOURCES:
            images = source_images(run, source, args.samples, args.seed)
            report = evaluate(images, real, train=train, seed=args.seed)
            rows.append({"method": method, "source": source, "images": len(images),
                         **{m: getattr(report, m) for m, _, _ in METRICS}, "features": report.extractor})
            pictures.append(images[:10])

    table = Table(title=f"digiface64 → {args.target}, seed {args.seed}: samples by latent source")
    header = ["method", "latents", "images", *(name for _, name, _ in METRICS)]
    for name in header:
        table.add_column(name)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["method"], row["source"], str(row["images"]),
                 *(f"{row[m]:.{digits}f}" for m, _, digits in METRICS)]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console().print(table)
    command = "python " + " ".join(sys.argv)
    write_json(args.json, {"command": command, "torch": torch.__version__, "target": args.target, "seed": args.seed,
                           "train_images": len(train), "real_images": len(real),
                           "wall_time_s": round(time.perf_counter() - started, 1), "rows": rows})
    with atomic_path(args.json.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    save_grid(torch.cat(pictures), args.grid, nrow=10)
    print(f"wrote {args.json}, {args.json.with_suffix('.md')} and {args.grid}")


if __name__ == "__main__":
    main()
