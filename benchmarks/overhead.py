"""Forward-time overhead of attached adapters, and checkpoint size against raw tensor bytes.

For each test generator: the bare base, the base with the adapter hooked in (unmerged) and the
adapter merged into a copy of the base, timed round-robin in one run (batch 16, median of repeated
runs). Usage: python benchmarks/overhead.py [--repeats 30] [--threads 1] [--with-biggan] [--json benchmarks/results/overhead.json]
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import adaptkit  # noqa: E402
from _timing import time_side_by_side, write_json  # noqa: E402
from models import biggan_deep, biggan_inputs, tiny_cond_generator, tiny_generator  # noqa: E402

BATCH = 16


def generators(with_biggan: bool) -> dict[str, tuple[torch.nn.Module, tuple]]:
    """name -> (model, inputs) for the benchmark's bases."""
    g = torch.Generator().manual_seed(0)
    cond = tiny_cond_generator(ch=64)
    dcgan = tiny_generator()
    found = {
        "sngan-style (CBN, 16x16, ch 64)": (cond, (torch.randn(BATCH, 16, generator=g), torch.arange(BATCH) % 4)),
        "dcgan-style (BN+GN, 16x16)": (dcgan, (torch.randn(BATCH, 16, generator=g),)),
    }
    if with_biggan:  # ~1.4 s per batch-16 forward on 2 CPU cores even at width 16
        big = biggan_deep(channel_width=16)
        found["biggan-deep-128 (width 16)"] = (big, biggan_inputs(big, batch=BATCH))
    return found


# Adapter variants: (label, adapter name, options). Other adapters add rows here.
VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("bsa", "bsa", {}),
    *((f"pwgconv r{r}", "pwgconv", {"ratio": r}) for r in (2, 4, 8)),
]


def perturb(handle: adaptkit.AdapterHandle) -> None:
    """Trained-looking adapter values, so nothing is skipped as an identity."""
    with torch.no_grad():
        for p in handle.parameters():
            p.add_(torch.randn_like(p) * 0.05)


def measure(model: torch.nn.Module, inputs: tuple, adapter: str, options: dict, repeats: int) -> dict[str, Any]:
    adapted = copy.deepcopy(model)
    handle = adaptkit.attach_adapter(adapted, adapter, **options)
    perturb(handle)
    fns: dict[str, Callable[[], Any]] = {"base": lambda: model(*inputs), "adapted": lambda: adapted(*inputs)}
    merged = copy.deepcopy(model)
    merged_handle = adaptkit.attach_adapter(merged, adapter, **options)
    merged_handle.load_state_dict(handle.state_dict())
    try:
        merged_handle.merge()
        fns["merged"] = lambda: merged(*inputs)
    except adaptkit.NotMergeableError:
        pass
    times = time_side_by_side(fns, repeats=repeats)
    with tempfile.TemporaryDirectory() as tmp:
        folder = adaptkit.save_adapter(handle, tmp)
        size = (folder / "adapter_model.safetensors").stat().st_size
    raw = sum(t.numel() * t.element_size() for t in handle.state_dict().values())
    return {
        "base_ms": times["base"] * 1e3,
        "adapted_ms": times["adapted"] * 1e3,
        "adapted_ratio": times["adapted"] / times["base"],
        "merged_ratio": times["merged"] / times["base"] if "merged" in times else None,
        "adapter_params": handle.num_parameters(),
        "checkpoint_bytes": size,
        "tensor_bytes": raw,
        "checkpoint_overhead_bytes": size - raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = least noisy)")
    parser.add_argument("--with-biggan", action="store_true", help="add BigGAN-deep-128 at width 16 (slow on CPU)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for gen_name, (model, inputs) in generators(args.with_biggan).items():
        for label, adapter, options in VARIANTS:
            row = {"generator": gen_name, "adapter": label, **measure(model, inputs, adapter, options, args.repeats)}
            rows.append(row)
    table = Table(title=f"forward overhead, batch {BATCH}, {args.threads} thread(s), median of {args.repeats}")
    for col in ("generator", "adapter", "base ms", "adapted/base", "merged/base", "params", "ckpt bytes", "tensor bytes"):
        table.add_column(col, justify="left" if col in ("generator", "adapter") else "right")
    for r in rows:
        merged = f"{r['merged_ratio']:.3f}x" if r["merged_ratio"] is not None else "not mergeable"
        table.add_row(
            r["generator"], r["adapter"], f"{r['base_ms']:.2f}", f"{r['adapted_ratio']:.3f}x", merged,
            f"{r['adapter_params']:,}", f"{r['checkpoint_bytes']:,}", f"{r['tensor_bytes']:,}",
        )
    Console().print(table)
    write_json(args.json, {"batch": BATCH, "threads": args.threads, "repeats": args.repeats,
                           "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
