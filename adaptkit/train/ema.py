"""An exponential moving average (EMA) of the trained parameters, what a run outputs when
``--ema-decay`` is on (the few-shot GAN field's "EMA generator")."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

WARMUP = 10
"""After t updates the average moves with decay min(decay, (1 + t) / (WARMUP + t)): early on it
follows the parameters closely, so that a short run's average is not held at the start (after
1000 steps of a 0.999 decay, 37% of a plain average would still be the starting weights)."""


class ParameterEMA:
    """The moving average of ``params`` (by name), updated after each optimizer step."""

    def __init__(self, params: dict[str, nn.Parameter], decay: float) -> None:
        self.params, self.decay = params, decay
        self.average = {n: p.detach().clone() for n, p in params.items()}

    @torch.no_grad()
    def update(self, updates: int) -> None:
        """Move the average toward the parameters, the ``updates``-th time (from 1)."""
        decay = min(self.decay, updates / (WARMUP - 1 + updates))
        for name, p in self.params.items():
            self.average[name].lerp_(p.detach(), 1 - decay)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The parameters hold the average inside the block and their own values again after it."""
        with torch.no_grad():
            saved = {n: p.detach().clone() for n, p in self.params.items()}
            for name, p in self.params.items():
                p.copy_(self.average[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(saved[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.average)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, value in self.average.items():
                value.copy_(state[name])
