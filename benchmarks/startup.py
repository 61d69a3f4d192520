"""Start-up time of the command line and of ``import adaptkit``, and which heavy packages each loads.

Every case runs in a fresh interpreter (``python -m adaptkit …`` with this checkout first on the
path), round-robin so machine noise hits all alike; the median and the fastest of ``--repeats``
wall times are reported. One extra run per case under ``python -X importtime`` tells whether torch
and torchvision were imported. The machine's load average before and after is recorded: on a
busy machine every number grows, the interpreter's own start-up included.

Usage: python benchmarks/startup.py [--repeats 7] [--json benchmarks/results/startup.json]
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402

CASES = {
    "python -c pass (the interpreter alone)": ["-c", "pass"],
    "adaptkit --version": ["-m", "adaptkit", "--version"],
    "adaptkit --help": ["-m", "adaptkit", "--help"],
    "import adaptkit": ["-c", "import adaptkit"],
    "import torch (what a torch command pays at least)": ["-c", "import torch"],
    "adaptkit sample --help (a command that needs torch)": ["-m", "adaptkit", "sample", "--help"],
    "import adaptkit; adaptkit.fit": ["-c", "import adaptkit; adaptkit.fit"],
}
WATCHED = ("torch", "torchvision", "huggingface_hub")


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_once(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def imported(args: list[str], env: dict[str, str]) -> list[str]:
    """Which of ``WATCHED`` the case imports (from ``python -X importtime``'s report)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in WATCHED if name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "startup.json"))
    args = parser.parse_args()
    env = environment()
    load_before = os.getloadavg()
    for case in CASES.values():  # warm the file cache once
        run_once(case, env)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, case in CASES.items():
            samples[name].append(run_once(case, env))
    loads = {name: imported(case, env) for name, case in CASES.items()}
    load_after = os.getloadavg()

    table = Table(title=f"start-up, median (fastest) of {args.repeats} fresh interpreters")
    for column in ("case", "median s", "fastest s", f"imports (of {', '.join(WATCHED)})"):
        table.add_column(column)
    rows = []
    for name in CASES:
        median, fastest = statistics.median(samples[name]), min(samples[name])
        rows.append({"case": name, "command": " ".join(["python", *CASES[name]]), "median_s": round(median, 3),
                     "fastest_s": round(fastest, 3), "imports": loads[name]})
        table.add_row(name, f"{median:.2f}", f"{fastest:.2f}", ", ".join(loads[name]) or "–")
    Console(width=120).print(table)
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; {os.cpu_count()} CPUs")
    write_json(args.json, {
        "command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
        "repeats": args.repeats,
        "conditions": {
            "cpus": os.cpu_count(), "load_average_1min_before": round(load_before[0], 2),
            "load_average_1min_after": round(load_after[0], 2), "python": platform.python_version(),
            "torch": metadata.version("torch"), "platform": platform.platform(),
        },
        "results": rows,
    })


if __name__ == "__main__":
    main()
