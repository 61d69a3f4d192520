"""Choosing the training device and the autocast precision."""
from __future__ import annotations

import torch

from ..errors import ConfigError


def select_device(choice: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (``cuda:<local_rank>`` under torchrun), then MPS, then CPU; else ``choice``,
    checked to exist."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise ConfigError(f"--device {choice!r} is not a device (cpu, cuda, cuda:N, mps or auto)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is available (use --device cpu or auto)")
        index = device.index if device.index is not None else local_rank % torch.cuda.device_count()
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {choice}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: MPS is not available (use --device cpu or auto)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {choice!r}: only cpu, cuda and mps are supported")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None``: full fp32)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        raise ConfigError(f"--precision {precision} needs a GPU (autocast is only used on CUDA/MPS); use fp32 or auto")
    return torch.bfloat16 if precision == "bf16" else torch.float16
