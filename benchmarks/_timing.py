"""Side-by-side timing: interleave the variants so machine noise hits them all alike."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import torch


def time_side_by_side(
    fns: dict[str, Callable[[], Any]], *, repeats: int = 30, inner: int = 5, warmup: int = 3, grad: bool = False
) -> dict[str, float]:
    """Median seconds per call of each function, measured round-robin in one run (under
    ``torch.no_grad`` unless ``grad``, for functions that run a backward pass)."""
    with torch.set_grad_enabled(grad):
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        samples: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                for _ in range(inner):
                    fn()
                samples[name].append((time.perf_counter() - start) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def write_json(path: str | Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def busy_processes(limit: int = 5) -> list[str]:
    """The busiest other processes (``ps``), to say what else was running."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    except OSError:
        return []
    rows = [line.split(None, 1) for line in out.splitlines()[1:]]
    return [rest[:120] for pid, rest in rows if int(pid) != os.getpid()][:limit]
