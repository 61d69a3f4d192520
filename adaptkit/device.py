"""Choosing the device a command or function runs on: the one rule every caller uses."""
from __future__ import annotations

import torch

from .errors import ConfigError


def select_device(choice: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (``cuda:<local_rank>`` under torchrun), then MPS, then CPU; else ``choice``,
    checked to exist (``ConfigError`` if not)."""
    if isinstance(choice, torch.device):
        choice = str(choice)
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise ConfigError(f"device {choice!r} is not a device: use cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {choice!r}: no CUDA GPU is available (use cpu or auto)")
        index = device.index if device.index is not None else local_rank % torch.cuda.device_count()
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {choice!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {choice!r}: MPS is not available (use cpu or auto)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {choice!r}: only cpu, cuda and mps are supported")
    return device
