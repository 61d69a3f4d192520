"""Helpers shared by the training scripts in examples/: progress, provenance, atomic writes."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
    TimeElapsedColumn, TimeRemainingColumn,
)
from rich.text import Text
from safetensors import safe_open
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[1]


class SpeedColumn(ProgressColumn):
    """Steps per second of a task (blank until rich has an estimate)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f} it/s" if task.speed else "-- it/s", style="cyan")


def training_progress(console: Console) -> Progress:
    """A progress bar with step count, speed, ETA and a free ``stats`` field for losses."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), SpeedColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"), console=console,
    )


def command_line() -> str:
    """This invocation as a portable command: ``python <script relative to the repo> args``."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(REPO_ROOT) if script.is_relative_to(REPO_ROOT) else script.name
    return shlex.join(["python", str(name), *sys.argv[1:]])


def file_md5(*paths: Path) -> dict[str, str]:
    """MD5 of each file, keyed by file name."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in paths}


def save_safetensors_atomic(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None,
) -> None:
    """Write a safetensors file through a temporary sibling and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
    os.replace(tmp, path)


def write_json_atomic(data: Any, path: Path) -> None:
    """Write indented JSON through a temporary sibling and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{prefix.key: tensor}``."""
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_to_safetensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], str]:
    """Split an optimizer state dict into flat tensors (``state.<param>.<key>``) and the
    JSON of its param groups."""
    state = optimizer.state_dict()
    tensors = {
        f"state.{index}.{key}": value
        for index, entries in state["state"].items()
        for key, value in entries.items()
    }
    return tensors, json.dumps(state["param_groups"])


def optimizer_from_safetensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: str,
) -> None:
    """Inverse of :func:`optimizer_to_safetensors`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in json.loads(param_groups)
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def read_checkpoint(path: Path, hyper: dict[str, Any]) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a training checkpoint, refused (``click.UsageError``) when it was
    trained with other hyperparameters than ``hyper``."""
    import click

    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    saved = json.loads(metadata["hyper"])
    if saved != json.loads(json.dumps(hyper)):
        raise click.UsageError(f"{path} was trained with different hyperparameters: {saved}")
    return metadata, tensors
