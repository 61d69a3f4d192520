"""Shared pieces of the quality benchmarks: independent jobs run in worker processes (one thread
each, results cached per job so an interrupted benchmark resumes) and mean ± std summaries."""
from __future__ import annotations

import json
import math
import multiprocessing
import os
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


def run_jobs(jobs: list[dict[str, Any]], worker: Callable[[dict[str, Any]], dict[str, Any]], cache: Path,
             workers: int, threads: int) -> list[dict[str, Any]]:
    """``worker(job)`` for every job (each has a unique ``key``), ``workers`` at a time in fresh
    processes of ``threads`` threads. A job whose result is in ``cache/<key>.json`` is not run
    again. Returns the results in job order, each merged with its job."""
    cache.mkdir(parents=True, exist_ok=True)
    done = {j["key"]: json.loads((cache / f"{j['key']}.json").read_text())
            for j in jobs if (cache / f"{j['key']}.json").is_file()}
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
    return [{**j, **done[j["key"]]} for j in jobs]



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


def save_results(path: Path, payload: dict[str, Any], markdown: str) -> None:
    """``path`` (JSON) and the markdown table beside it (``.md``)."""
    write_json(path, payload)
    path.with_suffix(".md").write_text(markdown)
