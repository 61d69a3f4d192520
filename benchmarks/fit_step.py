"""Per-step cost of `bsa` fitting vs fine-tuning every generator weight ("update all") with the same
objective, side by side on the same base and data.

Each mode runs the real training step of ``adaptkit fit`` (``Trainer.train_step``) in a fresh
subprocess: warm-up steps, then timed steps; the modes alternate ``--repeat`` times and each
mode's fastest run counts (a shared machine's load varies). Memory is the peak the training steps add on top of
the loaded base and data (gradients, optimizer state, saved activations): CUDA's peak allocated
bytes, or on CPU the peak resident set size (Linux ``VmHWM``, reset before the steps).

    python benchmarks/fit_step.py                                  # digits32, 25 synthetic images
    python benchmarks/fit_step.py --base python:fit_step:random_biggan_deep_128 --batch 8
    python benchmarks/fit_step.py --data ../shared/data/bsa-fewshot/face --base biggan-deep-128

Prints a table and writes JSON (``--json``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # python:fit_step:... bases

MODES = {"bsa": {"adapter": "bsa"}, "update-all": {"adapter": "none", "unfreeze": ["all"]}}


def random_biggan_deep_128():
    """BigGAN-deep 128 (the paper's base architecture) with random weights: no download needed."""
    from pytorch_pretrained_biggan import BigGANConfig

    from adaptkit.bases.biggan import biggan_from_config

    return biggan_from_config(BigGANConfig(), None, name="python:fit_step:random_biggan_deep_128")


def synthetic_images(folder: Path, count: int, size: int = 128) -> Path:
    """``count`` random smooth RGB images in ``folder/0/`` (class 0 for conditional bases)."""
    from PIL import Image

    (folder / "0").mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for i in range(count):
        low = torch.rand(1, 3, 4, 4, generator=g)
        image = torch.nn.functional.interpolate(low, size=size, mode="bicubic").clamp(0, 1)[0]
        Image.fromarray((image.permute(1, 2, 0) * 255).byte().numpy()).save(folder / "0" / f"{i:03d}.png")
    return folder


def _rss_peak_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def measure(args: argparse.Namespace, mode: str) -> dict:
    """Run one mode in this process; returns its numbers."""
    from adaptkit.train.config import FitConfig
    from adaptkit.train.ddp import Processes
    from adaptkit.device import select_device
    from adaptkit.train.loop import Trainer
    from adaptkit.train.plan import plan_fit
    from adaptkit.train.progress import SilentReporter

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    with tempfile.TemporaryDirectory() as out:
        config = FitConfig(data=args.data, out=out, base=args.base, perceptual=args.perceptual, steps=10**9,
                           batch_size=args.batch, device=args.device, precision=args.precision, quiet=True,
                           **MODES[mode])
        trainer = Trainer(plan_fit(config, device), Processes(), None, SilentReporter())
        trainer.setup()
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            baseline = torch.cuda.memory_allocated()
        else:
            resettable = _rss_peak_reset()
            baseline = _status_kib("VmRSS") * 1024
        for _ in range(args.warmup):
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize()
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / args.steps
        cpu_seconds = (time.process_time() - cpu_started) / args.steps
        peak = torch.cuda.max_memory_allocated() if cuda else _status_kib("VmHWM") * 1024 if resettable else None
        trainable = sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"])
        return {
            "mode": mode, "seconds_per_step": seconds, "cpu_seconds_per_step": cpu_seconds,
            "peak_training_memory_bytes": None if peak is None else peak - baseline,
            "trainable_parameters": trainable, "device": str(device), "base": trainer.base.id,
            "images": len(trainer.data), "batch": min(args.batch, len(trainer.data)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="digits32")
    parser.add_argument("--data", help="image folder (default: 25 synthetic images)")
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode, alternating; the fastest counts")
    parser.add_argument("--perceptual", default="none", help="same for both modes (default none: the generator only)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default="fit_step.json", help="where to write the results")
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args, args.child)))
        return

    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or str(synthetic_images(Path(tmp) / "data", 25))
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):  # alternating, so that load changes on a shared machine hit both modes
            for mode in MODES:
                command = [sys.executable, __file__, *sys.argv[1:], "--child", mode]
                if not args.data:
                    command += ["--data", data]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"{mode} failed:\n{done.stderr.strip()}")
                runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results = {mode: {**min(rs, key=lambda r: r["seconds_per_step"]),
                      "cpu_seconds_per_step": min(r["cpu_seconds_per_step"] for r in rs),
                      "runs": rs} for mode, rs in runs.items()}

    bsa, full = results["bsa"], results["update-all"]
    time_ratio = bsa["seconds_per_step"] / full["seconds_per_step"]
    cpu_ratio = bsa["cpu_seconds_per_step"] / full["cpu_seconds_per_step"]
    mem = [r["peak_training_memory_bytes"] for r in (bsa, full)]
    mem_ratio = mem[0] / mem[1] if None not in mem and mem[1] > 0 else None
    table = Table(title=f"fit step: {bsa['base']}, {bsa['images']} images, batch {bsa['batch']}, {bsa['device']}, "
                        f"perceptual {args.perceptual}")
    for col in ("mode", "trainable params", "s / step", "CPU s / step", "peak training memory (MiB)"):
        table.add_column(col, justify="right")
    for r in (bsa, full):
        memory = "-" if r["peak_training_memory_bytes"] is None else f"{r['peak_training_memory_bytes'] / 2**20:,.1f}"
        table.add_row(r["mode"], f"{r['trainable_parameters']:,}", f"{r['seconds_per_step']:.4f}",
                      f"{r['cpu_seconds_per_step']:.4f}", memory)
    table.add_row("bsa / update-all", "", f"{time_ratio:.2f}× (target ≤ 0.6)", f"{cpu_ratio:.2f}×",
                  "-" if mem_ratio is None else f"{mem_ratio:.2f}× (target ≤ 0.7)")
    Console().print(table)
    summary = {"command": " ".join(["python", "benchmarks/fit_step.py", *sys.argv[1:]]), "results": results,
               "time_ratio": time_ratio, "cpu_time_ratio": cpu_ratio, "memory_ratio": mem_ratio}
    Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
