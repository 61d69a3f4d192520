"""pwgconv's parameter budget: adapter parameters per ratio and conditioning, against a conditional
channel-wise (γ, β) generator on the same input (the paper's reference) and the base itself.

Counts only (no timing): the test generators and BigGAN-deep-128 built from its config (no weights).
Prints a table and writes JSON.

    python benchmarks/pwgconv_budget.py [--json FILE]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import adaptkit  # noqa: E402
from _timing import write_json  # noqa: E402
from models import tiny_cond_generator, tiny_generator  # noqa: E402


def bases():
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    return {
        "sngan-style (CBN, ch 64)": tiny_cond_generator(ch=64),
        "dcgan-style (BN+GN)": tiny_generator(),
        "biggan-deep-128": BigGAN(BigGANConfig()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pwgconv_budget.json"))
    args = parser.parse_args()
    rows: dict[tuple, dict] = {}  # by (base, resolved conditioning, ratio): "auto" may resolve to "latent"
    for name, model in bases().items():
        base_params = sum(p.numel() for p in model.parameters())
        for conditioning in ("auto", "latent"):
            for ratio in (2, 4, 8):
                handle = adaptkit.attach_adapter(model, "pwgconv", ratio=ratio, conditioning=conditioning)
                adapters = [a for *_, a in handle.layers()]
                rows[(name, adapters[0].mode, ratio)] = {
                    "base": name, "conditioning": adapters[0].mode, "ratio": ratio,
                    "group_sizes": sorted({a.group_size for a in adapters}),
                    "params": handle.num_parameters(),
                    "channelwise_params": sum(2 * (a.cond_dim + 1) * a.info.channels for a in adapters),
                    "base_params": base_params, "fp32_mb": handle.num_parameters() * 4 / 2**20,
                }
                handle.detach()
    table = Table(title="pwgconv parameters per ratio (per-layer generator sizes summed over the targets)")
    for col in ("base", "conditioning", "ratio", "k", "params", "× channel-wise", "% of base", "fp32 MB"):
        table.add_column(col, justify="left" if col in ("base", "conditioning") else "right")
    for r in rows.values():
        table.add_row(
            r["base"], r["conditioning"], str(r["ratio"]), "/".join(map(str, r["group_sizes"])), f"{r['params']:,}",
            f"{r['params'] / r['channelwise_params']:.2f}x", f"{100 * r['params'] / r['base_params']:.1f}%",
            f"{r['fp32_mb']:.2f}",
        )
    Console(width=110).print(table)
    write_json(args.json, {"rows": list(rows.values())})


if __name__ == "__main__":
    main()
