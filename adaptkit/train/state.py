"""Resume checkpoints: every tensor in one safetensors file, everything else in a JSON file.

A checkpoint is ``step-NNNNNNN.safetensors`` + ``step-NNNNNNN.json`` in the run's ``checkpoints/``
folder. The JSON is written last (each file atomically), so a checkpoint whose JSON exists is
complete. Older ones are removed once the newer one is confirmed good (its values gave a finite
loss at the next step, or training ended with finite values), so the last checkpoint never holds a
diverged state. Optimizer states are flattened
into tensors (``<prefix>/<param index>/<key>``) plus JSON (hyperparameters, scalar entries).
Nothing is pickled.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..errors import CheckpointError
from ..io.atomic import atomic_path, write_json
from ..io.checkpoint import read_tensors

_NAME = re.compile(r"step-(\d+)\.json")


def _stem(step: int) -> str:
    return f"step-{step:07d}"


def save_checkpoint(folder: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write the checkpoint of ``step`` (older ones stay until :func:`keep_only`); returns the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(folder / f"{_stem(step)}.safetensors") as tmp:
        save_file(cpu, str(tmp))
    path = folder / f"{_stem(step)}.json"
    write_json(path, {"step": step, **meta})
    return path


def keep_only(folder: Path, step: int | None) -> None:
    """Remove every checkpoint in ``folder`` but ``step``'s (all of them for ``None``); the JSON
    first, so a checkpoint is never half there."""
    for old in sorted(folder.glob("step-*"), key=lambda p: p.suffix != ".json"):
        if step is None or not old.name.startswith(_stem(step) + "."):
            old.unlink(missing_ok=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The JSON file of the newest complete checkpoint in ``folder``, if any."""
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.json") if (m := _NAME.fullmatch(p.name))]
    complete = [(s, p) for s, p in found if p.with_suffix(".safetensors").is_file()]
    return max(complete)[1] if complete else None


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON part of a checkpoint."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({exc})") from None


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON metadata and the tensors of one checkpoint (refused if corrupt or not finite)."""
    meta = read_meta(path)
    return meta, read_tensors(path.with_suffix(".safetensors"))


def optimizer_state(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as tensors named ``<prefix>/<index>/<key>`` and JSON."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in sd["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}/{index}/{key}"] = value
            else:
                scalars[f"{index}/{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Restore what :func:`optimizer_state` saved."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "/"):
            index, key = name[len(prefix) + 1:].split("/", 1)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split("/", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}
