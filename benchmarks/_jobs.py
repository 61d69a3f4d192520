"""Shared pieces of the quality benchmarks: independent jobs run in worker processes (one thread
each, results cached per job so an interrupted benchmark resumes; jobs already in the committed
results JSON are not run again, so a later session extends it) and mean ± std summaries."""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adaptkit.io.atomic import write_json


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this worker once ``parent`` is gone (a killed benchmark otherwise leaves its workers
    training, holding their run folders' locks)."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def recorded_jobs(path: Path) -> dict[str, dict[str, Any]]:
    """The job rows of a results JSON written by :func:`save_results`, by key (none when absent)."""
    if not path.is_file():
        return {}
    return {row["key"]: row for row in json.loads(path.read_text()).get("jobs", [])}


def run_jobs(jobs: list[dict[str, Any]], worker: Callable[[dict[str, Any]], dict[str, Any]], cache: Path,
             workers: int, threads: int, recorded: dict[str, dict[str, Any]] | None = None,
             on_result: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """``worker(job)`` for every job (each has a unique ``key``), ``workers`` at a time in fresh
    processes of ``threads`` threads. A job in ``recorded`` (see :func:`recorded_jobs`) or whose
    result is in ``cache/<key>.json`` is not run again. Returns the results in job order, each
    merged with its job; ``on_result``, if given, gets the finished ones so far (in job order)
    after each job that finishes here, e.g. to rewrite the results file."""
    cache.mkdir(parents=True, exist_ok=True)
    recorded = recorded or {}
    done = {j["key"]: recorded[j["key"]] for j in jobs if j["key"] in recorded}
    done |= {j["key"]: json.loads((cache / f"{j['key']}.json").read_text())
             for j in jobs if j["key"] not in done and (cache / f"{j['key']}.json").is_file()}
    todo = [j for j in jobs if j["key"] not in done]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress, ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(threads,)) as pool:
        task = progress.add_task(f"{len(todo)} jobs ({len(done)} cached)", total=len(jobs), completed=len(done))
        futures = {pool.submit(worker, j): j for j in todo}
        for future in as_completed(futures):
            job = futures[future]
            result = future.result()
            write_json(cache / f"{job['key']}.json", result)
            done[job["key"]] = result
            progress.update(task, advance=1, description=f"done: {job['key']}")
            if on_result is not None:
                on_result([{**j, **done[j["key"]]} for j in jobs if j["key"] in done])
    return [{**j, **done[j["key"]]} for j in jobs]


def all_rows(recorded: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded job rows with this invocation's added (or replacing theirs), in recorded order."""
    return list(({**recorded, **{r["key"]: r for r in rows}}).values())


def fit_or_rescore(jobs: list[dict[str, Any]], fit_job: Callable[[dict[str, Any]], dict[str, Any]],
                   score_job: Callable[[dict[str, Any]], dict[str, Any]], args: Any,
                   recorded: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every recorded row, with ``jobs`` run by ``fit_job`` (skipping recorded ones) or, with
    ``args.rescore``, the recorded jobs whose run folder is in ``args.work`` (or that fit nothing:
    method ``base``) scored again by ``score_job``, their new numbers over the recorded ones."""
    if not args.rescore:
        return all_rows(recorded, run_jobs(jobs, fit_job, args.work / "results", args.workers, args.threads, recorded))
    kept = [j for j in jobs if j["key"] in recorded and (j["method"] == "base" or (args.work / j["key"]).is_dir())]
    rescored = run_jobs(kept, score_job, args.work / "rescored", args.workers, args.threads)
    return all_rows(recorded, [{**recorded[r["key"]], **r} for r in rescored])


def commands(path: Path, command: str) -> list[str]:
    """Every command recorded in the results JSON at ``path``, then ``command`` (once)."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    previous = old.get("commands", [old["command"]] if "command" in old else [])
    return previous + ([command] if command not in previous else [])


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def fmt(values: list[float], digits: int) -> str:
    """``mean ± std`` of ``values`` with ``digits`` decimals."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def save_extended(path: Path, script: str, args: Any, wall: float, rows: list[dict[str, Any]],
                  summary: dict[str, Any], markdown: str, **extra: Any) -> None:
    """Print this invocation's wall time and write every recorded job (``rows``, from
    :func:`all_rows`), the summary, ``extra`` and the commands that made them to ``path`` and the
    ``.md`` beside it."""
    fit_minutes = sum(r["fit_s"] for r in rows) / 60
    print(f"this invocation: {wall / 60:.1f} min wall ({args.workers} workers × {args.threads} thread); "
          f"all {len(rows)} recorded jobs: {fit_minutes:.1f} job-minutes")
    command = (f"python benchmarks/{script} " + " ".join(sys.argv[1:])).strip()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    save_results(path, {"commands": commands(path, command), "torch": torch.__version__, "settings": settings,
                        "last_wall_time_s": round(wall, 1), "job_minutes": round(fit_minutes, 1), **extra,
                        "summary": summary, "jobs": rows}, markdown)


def save_results(path: Path, payload: dict[str, Any], markdown: str) -> None:
    """``path`` (JSON) and the markdown table beside it (``.md``)."""
    write_json(path, payload)
    path.with_suffix(".md").write_text(markdown)
