"""Samples from a fit run folder (``adapter_config.json`` + weights), for ``adaptkit eval``."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import EvaluationError
from ..io.checkpoint import CONFIG_NAME


def is_run_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def samples_from_run(folder: str | os.PathLike, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` images (N, C, H, W) in [-1, 1] from the base adapted by the run in ``folder``."""
    raise EvaluationError(
        f"evaluating a run folder ({folder}) needs adaptkit's sampling (adaptkit.sample), which this "
        f"installation lacks: save samples as images and evaluate that folder instead")
