"""Which kernel computes pwgconv's per-sample grouped 1×1 convolution faster: a batched matmul over
(B·G, k, H·W) (what the adapter uses) or one ``conv2d`` with ``groups = B·G``?

Both are timed side by side (interleaved, median of repeats), forward and forward+backward, on the
target shapes of the SNGAN-style test generator (widths 16 and 64) and of BigGAN-deep-128 (from its config, no weights), at the
group sizes that ratios 2/4/8 give. Prints a table and writes JSON.

    python benchmarks/pwgconv_kernels.py [--batch 16] [--repeats 7] [--device cpu] [--threads N] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from adaptkit.io.atomic import write_json
from adaptkit_plugins.pwgconv import group_size_for_ratio, grouped_pointwise


def grouped_conv2d(x: torch.Tensor, delta: torch.Tensor, bias: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """The alternative: the same product as one conv2d over a (1, B·C, H·W, 1) input, groups = B·G."""
    (n, c), k = x.shape[:2], identity.shape[0]
    weight = (delta.reshape(n * c // k, k, k) + identity).reshape(n * c, k, 1, 1)
    return F.conv2d(x.reshape(1, n * c, -1, 1), weight, bias.reshape(-1), groups=n * c // k).view(x.shape)


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


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(channels: int, res: int, k: int, batch: int, repeats: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, res, res, generator=g).to(device)
    delta = (0.1 * torch.randn(batch, channels * k, generator=g)).to(device).requires_grad_()
    bias = (0.1 * torch.randn(batch, channels, generator=g)).to(device).requires_grad_()
    x.requires_grad_()
    eye = torch.eye(k, device=device)
    outs = {name: fn(x, delta, bias, eye) for name, fn in KERNELS.items()}
    assert torch.allclose(outs["bmm"], outs["conv2d"], atol=1e-4, rtol=1e-4), "the kernels disagree"
    grad = torch.randn_like(outs["bmm"])

    def forward(fn):
        with torch.no_grad():
            fn(x, delta, bias, eye)

    def train_step(fn):
        torch.autograd.grad(fn(x, delta, bias, eye), (x, delta, bias), grad)

    times = {f"{name}_{what}": [] for name in KERNELS for what in ("fwd", "fwdbwd")}
    for _ in range(repeats + 1):  # the first round warms up
        for name, fn in KERNELS.items():
            times[f"{name}_fwd"].append(timed(lambda: forward(fn), device))
            times[f"{name}_fwdbwd"].append(timed(lambda: train_step(fn), device))
    return {key: statistics.median(v[1:]) for key, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ratios", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pwgconv_kernels.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    suites = {
        "sngan-style ch 16": Counter({(16, 4): 1, (16, 8): 2, (16, 16): 1}),
        "sngan-style ch 64": Counter({(64, 4): 1, (64, 8): 2, (64, 16): 1}),
        "BigGAN-deep-128": biggan_deep_128_shapes(),
    }

    rows = []
    table = Table(title=f"pwgconv kernels, batch {args.batch}, {device.type}, {torch.get_num_threads()} thread(s): "
                  "ms summed over the target layers, median of repeats")
    for col in ("layers", "ratio", "k", "bmm fwd", "conv fwd", "conv/bmm", "bmm f+b", "conv f+b", "conv/bmm"):
        table.add_column(col, justify="left" if col == "layers" else "right")
    for suite, shapes in suites.items():
        for ratio in args.ratios:
            total = Counter()
            ks = set()
            for (channels, res), count in shapes.items():
                k = group_size_for_ratio(channels, ratio)
                ks.add(k)
                for key, seconds in measure(channels, res, k, args.batch, args.repeats, device).items():
                    total[key] += seconds * count * 1000
            row = {"suite": suite, "ratio": ratio, "group_sizes": sorted(ks), **{k: round(v, 3) for k, v in total.items()}}
            rows.append(row)
            table.add_row(
                suite, str(ratio), "/".join(map(str, sorted(ks))),
                f"{total['bmm_fwd']:.1f}", f"{total['conv2d_fwd']:.1f}", f"{total['conv2d_fwd'] / total['bmm_fwd']:.2f}x",
                f"{total['bmm_fwdbwd']:.1f}", f"{total['conv2d_fwdbwd']:.1f}", f"{total['conv2d_fwdbwd'] / total['bmm_fwdbwd']:.2f}x",
            )
    Console(width=100).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {
        "batch": args.batch, "device": str(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "repeats": args.repeats, "rows": rows,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
