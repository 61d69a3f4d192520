"""Training speed of `adaptkit fit` on the embedded digits32 base at several torch thread counts,
side by side: the basis of the `--threads` default.

Each setting runs fit's real training step (``Trainer.train_step``: bsa, perceptual ``auto``, batch
25, the demo's 25 images) in a fresh subprocess: warm-up steps, then timed steps. The settings
alternate ``--repeat`` times, so a shared machine's changing load hits them alike; each setting's
median counts, and the ratios to one thread are what to read. The load average and the busiest
other processes are recorded beside the numbers.

    python benchmarks/threads.py [--threads 1,2,default] [--steps 30] [--repeat 3] [--json benchmarks/results/threads.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import busy_processes, write_json  # noqa: E402
from fit_step import measure  # noqa: E402

DEFAULT = "default"
"""torch's own thread count (the number of physical cores), with no OMP_NUM_THREADS set."""


def child(args: argparse.Namespace) -> None:
    setting = args.child
    step_args = argparse.Namespace(
        threads=0 if setting == DEFAULT else int(setting), device="cpu", data=args.data, base="digits32",
        perceptual="auto", batch=25, precision="auto", warmup=args.warmup, steps=args.steps)
    result = measure(step_args, "bsa")
    print(json.dumps({**result, "threads": setting, "torch_threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default=f"1,2,{DEFAULT}", help="comma-separated counts, or `default`")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting, alternating")
    parser.add_argument("--json", default="benchmarks/results/threads.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from rich.console import Console
    from rich.table import Table

    from adaptkit.demo import write_demo_set

    settings = args.threads.split(",")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    load_before, busy = os.getloadavg(), busy_processes()
    runs: dict[str, list[dict]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(write_demo_set(Path(tmp) / "data"))
        for _ in range(args.repeat):
            for setting in settings:
                command = [sys.executable, __file__, "--child", setting, "--data", data,
                           "--steps", str(args.steps), "--warmup", str(args.warmup)]
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    sys.exit(f"threads {setting} failed:\n{done.stderr.strip()}")
                runs[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    its = {s: statistics.median(1 / r["seconds_per_step"] for r in rs) for s, rs in runs.items()}
    reference = its[settings[0]]
    table = Table(title=f"fit on digits32 (bsa, perceptual base, batch 25), {os.cpu_count()} CPUs, "
                        f"load {load_before[0]:.2f} → {load_after[0]:.2f}")
    for col in ("threads", "torch threads", "it/s (median)", f"÷ {settings[0]} thread(s)", "runs (it/s)"):
        table.add_column(col, justify="right")
    for s, rs in runs.items():
        table.add_row(s, str(rs[0]["torch_threads"]), f"{its[s]:.2f}", f"{its[s] / reference:.2f}×",
                      ", ".join(f"{1 / r['seconds_per_step']:.2f}" for r in rs))
    Console().print(table)
    print("busiest processes before the runs:\n  " + "\n  ".join(busy))
    write_json(args.json, {
        "command": " ".join(["python", "benchmarks/threads.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(), "torch": torch.__version__, "load_average_before": load_before,
        "load_average_after": load_after, "busy_processes_before": busy,
        "it_per_s_median": its, "ratio_to_first": {s: its[s] / reference for s in settings}, "runs": runs,
    })


if __name__ == "__main__":
    main()
