"""The autocast precision of training (the device itself: ``adaptkit.device.select_device``)."""
from __future__ import annotations

import torch

from ..errors import ConfigError, option


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None``: full fp32)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        raise ConfigError(f"{option('precision', precision)} needs a GPU (autocast is only used on CUDA/MPS); use fp32 or auto")
    return torch.bfloat16 if precision == "bf16" else torch.float16
