"""How `adaptkit eval`'s numbers behave on small sets: FID, KMMD and mean variance between two
disjoint sets of MNIST "3"s (one distribution, so the ideal is FID 0, mean variance 1) at several
set sizes, over several random splits. The basis of eval's small-sample warning.

    python benchmarks/eval_small_n.py [--data ../shared/data] [--sizes 10,25,50,100,300] [--splits 5] [--json benchmarks/results/eval_small_n.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import write_json  # noqa: E402

from adaptkit import frechet_distance, kmmd, mean_variance  # noqa: E402
from adaptkit.bases.data32 import load_mnist  # noqa: E402
from adaptkit.eval import load_feature_extractor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes", default="10,25,50,100,300")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--json", default="benchmarks/results/eval_small_n.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threes = load_mnist(args.data / "mnist-test", digits=[3]).images
    extractor, _ = load_feature_extractor("embedded")
    features = extractor.features(threes)
    sizes = [int(n) for n in args.sizes.split(",")]
    g = torch.Generator().manual_seed(0)
    table = Table(title=f"two disjoint sets of MNIST 3s ({extractor.name} features, {features.shape[1]}-d), "
                        f"mean ± std over {args.splits} splits")
    for col in ("images per set", "FID", "KMMD", "mean variance"):
        table.add_column(col, justify="right")
    rows = []
    for n in sizes:
        values: dict[str, list[float]] = {"fid": [], "kmmd": [], "mean_variance": []}
        for _ in range(args.splits):
            order = torch.randperm(len(features), generator=g)
            a, b = features[order[:n]], features[order[n:2 * n]]
            values["fid"].append(frechet_distance(a, b))
            values["kmmd"].append(kmmd(a, b))
            values["mean_variance"].append(mean_variance(a, b).value)
        row = {"n": n, **{k: {"mean": statistics.mean(v), "std": statistics.stdev(v)} for k, v in values.items()}}
        rows.append(row)
        table.add_row(str(n), *(f"{row[k]['mean']:.3g} ± {row[k]['std']:.2g}" for k in values))
    Console().print(table)
    write_json(args.json, {"command": " ".join(["python", "benchmarks/eval_small_n.py", *sys.argv[1:]]),
                           "extractor": extractor.name, "splits": args.splits, "rows": rows})


if __name__ == "__main__":
    main()
