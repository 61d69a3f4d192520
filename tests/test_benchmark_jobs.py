"""The benchmarks' job runner: a killed benchmark takes its worker processes with it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PARENT = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
from _jobs import run_jobs


def job(j):
    Path(j["pidfile"]).write_text(str(os.getpid()))
    time.sleep(600)
    return {{}}


if __name__ == "__main__":
    run_jobs([{{"key": "a", "pidfile": sys.argv[1]}}], job, Path(sys.argv[2]), 1, 1)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_workers_end_when_the_benchmark_is_killed(tmp_path):
    script, pidfile = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(PARENT.format(benchmarks=str(ROOT / "benchmarks")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, str(script), str(pidfile), str(tmp_path / "cache")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
            assert parent.poll() is None, "the benchmark process ended before its job started"
            time.sleep(0.2)
        worker = int(pidfile.read_text())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its killed benchmark"
    finally:
        if parent.poll() is None:
            parent.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)
