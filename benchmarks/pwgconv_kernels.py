"""Which kernel computes pwgconv's per-sample grouped 1×1 convolution faster: a batched matmul over
(B·G, k, H·W) (what the adapter uses) or one ``conv2d`` with ``groups = B·G``?

Both are timed side by side (round-robin, median of repeats), forward and forward+backward, on the
target shapes of the SNGAN-style test generator (widths 16 and 64) and of BigGAN-deep-128 (from its
config, no weights), at the group sizes that ratios 2/4/8 give. Prints a table and writes JSON.

    python benchmarks/pwgconv_kernels.py [--batch 16] [--repeats 7] [--threads 1] [--device cpu] [--json FILE]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import time_side_by_side, write_json  # noqa: E402
from adaptkit_plugins.pwgconv import group_size_for_ratio, grouped_pointwise  # noqa: E402


def grouped_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, group_size: int) -> torch.Tensor:
    """The alternative: the same product as one conv2d over a (1, B·C, H·W, 1) input, groups = B·G."""
    n, c = x.shape[:2]
    kernel = weight.reshape(n * c, group_size, 1, 1)
    return F.conv2d(x.reshape(1, n * c, -1, 1), kernel, bias.reshape(-1), groups=n * c // group_size).view(x.shape)


KERNELS = {"bmm": grouped_pointwise, "conv2d": grouped_conv2d}


def biggan_deep_128_shapes() -> Counter:
    """(channels, resolution) of the 40 conditional BNs of BigGAN-deep-128 (channel width 128)."""
    from pytorch_pretrained_biggan import BigGANConfig

    config, shapes, res = BigGANConfig(), Counter(), 4
    for up, cin, _ in config.layers:
        cin, mid = cin * config.channel_width, cin * config.channel_width // 4
        shapes.update([(cin, res), (mid, res)])
        res *= 2 if up else 1
        shapes.update([(mid, res), (mid, res)])
    return shapes


SUITES = {
    "sngan-style ch 16": lambda: Counter({(16, 4): 1, (16, 8): 2, (16, 16): 1}),
    "sngan-style ch 64": lambda: Counter({(64, 4): 1, (64, 8): 2, (64, 16): 1}),
    "BigGAN-deep-128": biggan_deep_128_shapes,
}


def measure(channels: int, res: int, k: int, batch: int, repeats: int, device: torch.device) -> dict[str, float]:
    """Seconds per call of each kernel, forward ("fwd") and forward+backward ("fwdbwd")."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, res, res, generator=g).to(device).requires_grad_()
    identity = torch.eye(k).flatten().repeat(batch, channels // k)
    weight = (identity + 0.1 * torch.randn(batch, channels * k, generator=g)).to(device).requires_grad_()
    bias = (0.1 * torch.randn(batch, channels, generator=g)).to(device).requires_grad_()
    outs = {name: fn(x, weight, bias, k) for name, fn in KERNELS.items()}
    assert torch.allclose(outs["bmm"], outs["conv2d"], atol=1e-4, rtol=1e-4), "the kernels disagree"
    grad = torch.randn_like(outs["bmm"])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def forward(fn):
        return lambda: (fn(x, weight, bias, k), sync())

    def train_step(fn):
        return lambda: (torch.autograd.grad(fn(x, weight, bias, k), (x, weight, bias), grad), sync())

    fwd = time_side_by_side({n: forward(fn) for n, fn in KERNELS.items()}, repeats=repeats, inner=1)
    both = time_side_by_side({n: train_step(fn) for n, fn in KERNELS.items()}, repeats=repeats, inner=1, grad=True)
    return {**{f"{n}_fwd": t for n, t in fwd.items()}, **{f"{n}_fwdbwd": t for n, t in both.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ratios", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = least noisy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pwgconv_kernels.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = []
    for suite, shapes in ((name, make()) for name, make in SUITES.items()):
        for ratio in args.ratios:
            total: Counter = Counter()
            ks = sorted({group_size_for_ratio(c, ratio) for c, _ in shapes})
            for (channels, res), count in shapes.items():
                k = group_size_for_ratio(channels, ratio)
                for key, seconds in measure(channels, res, k, args.batch, args.repeats, device).items():
                    total[key] += seconds * count * 1000
            rows.append({"suite": suite, "ratio": ratio, "group_sizes": ks, **{k: round(v, 3) for k, v in total.items()}})

    table = Table(title=f"pwgconv kernels, batch {args.batch}, {device.type}, {args.threads} thread(s): "
                  "ms summed over the target layers, median of repeats")
    for col in ("layers", "ratio", "k", "bmm fwd", "conv fwd", "conv/bmm", "bmm f+b", "conv f+b", "conv/bmm"):
        table.add_column(col, justify="left" if col == "layers" else "right")
    for r in rows:
        table.add_row(
            r["suite"], str(r["ratio"]), "/".join(map(str, r["group_sizes"])),
            f"{r['bmm_fwd']:.1f}", f"{r['conv2d_fwd']:.1f}", f"{r['conv2d_fwd'] / r['bmm_fwd']:.2f}x",
            f"{r['bmm_fwdbwd']:.1f}", f"{r['conv2d_fwdbwd']:.1f}", f"{r['conv2d_fwdbwd'] / r['bmm_fwdbwd']:.2f}x",
        )
    Console(width=110).print(table)
    write_json(args.json, {"batch": args.batch, "device": str(device), "threads": args.threads,
                           "torch": torch.__version__, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
