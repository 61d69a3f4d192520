"""Wall time of `adaptkit demo`, end to end (imports, making the images, training, pictures), as a
user runs it: the basis of every demo speed in the docs.

Runs ``python -m adaptkit demo --quiet`` ``--repeat`` times in fresh processes and records each
run's wall time and the it/s fit reports (``summary.json``), with the machine's load average and
busiest other processes beside them: on a shared machine, say what else was running.

    python benchmarks/demo_time.py [--repeat 1] [--json benchmarks/results/demo_time.json] [-- DEMO OPTIONS]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import busy_processes, write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", default="benchmarks/results/demo_time.json")
    parser.add_argument("demo_options", nargs="*", help="passed to `adaptkit demo` (after --)")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        load_before, busy = os.getloadavg(), busy_processes()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "demo"
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "adaptkit", "demo", "--out", str(out), "--quiet",
                                   *args.demo_options], capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"adaptkit demo failed:\n{done.stderr.strip()}")
            summary = json.loads((out / "summary.json").read_text())
        runs.append({"wall_s": round(wall, 1), "it_per_s": summary["it_per_s"], "steps": summary["steps"],
                     "train_time_s": summary["train_time_s"], "load_average_before": load_before,
                     "load_average_after": os.getloadavg(), "busy_processes_before": busy})
        print(f"adaptkit demo: {wall:.1f} s end to end, {summary['steps']} steps at {summary['it_per_s']} it/s "
              f"(load {load_before[0]:.2f} before); busiest other processes:\n  " + "\n  ".join(busy))
    write_json(args.json, {"command": " ".join(["python", "benchmarks/demo_time.py", *sys.argv[1:]]),
                           "cpus": os.cpu_count(), "runs": runs})


if __name__ == "__main__":
    main()
