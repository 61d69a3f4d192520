"""What the metrics of ``adaptkit eval`` say on known cases: MNIST "3"s against a disjoint set of
"3"s, against "7"s, noise, a memorized set (5 "3"s repeated) and a collapsed one (one "3" plus
faint noise). Embedded extractor, LPIPS-style diversity over its feature maps.

    python benchmarks/eval_sanity.py [--data ../shared/data] [-n 300] [--json benchmarks/results/eval_sanity.json]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from adaptkit import evaluate
from adaptkit.bases.data32 import load_mnist
from adaptkit.eval import load_feature_extractor
from adaptkit.io.atomic import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    parser.add_argument("-n", type=int, default=300, help="images per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/eval_sanity.json"))
    args = parser.parse_args()

    g = torch.Generator().manual_seed(args.seed)
    threes, sevens = (load_mnist(args.data / "mnist-test", digits=[d]).images for d in (3, 7))
    threes = threes[torch.randperm(len(threes), generator=g)]
    real = threes[:args.n]
    cases = {
        "the same 3s": real,
        "other 3s (disjoint)": threes[args.n:2 * args.n],
        "7s": sevens[torch.randperm(len(sevens), generator=g)[:args.n]],
        "uniform noise": torch.rand(args.n, 1, 32, 32, generator=g) * 2 - 1,
        "memorized: 5 other 3s repeated": threes[2 * args.n:2 * args.n + 5].repeat(args.n // 5, 1, 1, 1),
        "collapsed: one 3 + noise (σ 0.02)": (threes[2 * args.n + 5:2 * args.n + 6].repeat(args.n, 1, 1, 1)
                                              + 0.02 * torch.randn(args.n, 1, 32, 32, generator=g)).clamp(-1, 1),
    }
    extractor, _ = load_feature_extractor("embedded")
    table = Table(title=f"adaptkit eval against {args.n} MNIST 3s (features: {extractor.name})")
    for col in ("generated set", "KMMD", "mean variance", "FID", "LPIPS diversity", "seconds"):
        table.add_column(col, justify="left" if col == "generated set" else "right")
    results = {}
    for name, generated in cases.items():
        start = time.perf_counter()
        report = evaluate(generated, real, extractor=extractor, diversity="feature-maps", seed=args.seed)
        seconds = time.perf_counter() - start
        results[name] = {**report.to_dict(), "seconds": seconds}
        table.add_row(name, f"{report.kmmd:.4f}", f"{report.mean_variance:.4f}", f"{report.fid:.2f}",
                      f"{report.lpips_diversity:.4f}", f"{seconds:.1f}")
    table.caption = (f"LPIPS diversity of the real 3s: {report.lpips_diversity_real:.4f} "
                     f"({report.lpips_distance})")
    Console().print(table)
    write_json(args.json, {"command": "python benchmarks/eval_sanity.py " + f"-n {args.n} --seed {args.seed}",
                           "n": args.n, "seed": args.seed, "torch": torch.__version__, "results": results})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
