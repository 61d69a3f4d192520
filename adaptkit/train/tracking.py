"""Experiment tracking for ``fit --report-to``: the losses, learning rates and a fixed sample grid,
written beside the run folder's own records (which stay the source of truth)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch

from ..bases.base import Base
from ..errors import ConfigError
from ..images import grid_image
from ..sample import generate_images, seeded
from .config import TENSORBOARD_MISSING

TRACKED_SAMPLES = 16


class Tracker:
    """Logs nothing (``--report-to none``); the interface every tracker has."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log ``values`` (tag → number) at ``step``."""

    def samples(self, step: int) -> None:
        """Log the grid of the fixed samples as the generator draws them at ``step``."""

    def close(self) -> None:
        """Flush and close."""


class TensorBoardTracker(Tracker):
    """Event files in ``folder`` through ``torch.utils.tensorboard``; the sample grid is drawn from
    ``TRACKED_SAMPLES`` fixed latents (seeded, the base's truncation; classes cycling through the
    training images' labels), so the grids of one run are comparable step by step."""

    def __init__(self, folder: Path, base: Base, labels: torch.Tensor | None, seed: int,
                 outputs: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(TENSORBOARD_MISSING) from None
        self.folder, self.writer_class, self._writer = folder, SummaryWriter, None
        self.base, self.outputs = base, outputs
        self.z = base.sample_latents(TRACKED_SAMPLES, generator=seeded(seed + 4))
        self.y = None if labels is None else labels.cpu()[torch.arange(TRACKED_SAMPLES) % len(labels)]

    @property
    def writer(self):  # created at the first log, so that opening the tracker writes nothing
        if self._writer is None:
            self._writer = self.writer_class(log_dir=str(self.folder))
        return self._writer

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def samples(self, step: int) -> None:
        with self.outputs():
            grid = grid_image(generate_images(self.base, self.z, self.y), nrow=4)
        self.writer.add_image("samples", (grid + 1) / 2, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def open_tracker(report_to: str, folder: Path, base: Base, labels: torch.Tensor | None, seed: int,
                 outputs: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> Tracker:
    """The tracker ``report_to`` (one of ``REPORT_TO_CHOICES``, checked by ``FitConfig.validate``) names;
    a ``ConfigError`` when its package is missing. ``outputs()`` is the context the run's outputs are
    drawn in (fit's moving average of the parameters, when kept)."""
    return TensorBoardTracker(folder, base, labels, seed, outputs) if report_to == "tensorboard" else Tracker()
