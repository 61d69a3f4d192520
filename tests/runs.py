"""Fake `adaptkit fit` run folders (an adapter checkpoint plus learned latents, as fit writes them), and
the small fit settings the fit tests share."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable

import torch

from adaptkit import attach_adapter, save_adapter
from adaptkit.io.run_dir import save_latents
from adaptkit.train import FitConfig
from models import tiny_cond_generator

TINY_COND = "python:models:tiny_cond_generator"


def make_run(folder: Path, seed: int, *, count: int = 3, labels: list[int] | None = None, base_id: str | None = TINY_COND,
             latents: bool = True, metadata: dict | None = None, **options) -> Path:
    """Save a bsa adapter (``options``) with random (non-identity) tensors, ``metadata``, and ``count``
    learned latents."""
    model = tiny_cond_generator()
    handle = attach_adapter(model, "bsa", **options)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in handle.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    save_adapter(handle, folder, base_id=base_id, metadata=metadata)
    if latents:
        z = torch.randn(count, model.latent_dim, generator=g)
        save_latents(folder, z, torch.tensor(labels if labels is not None else [seed % 4] * count))
    handle.detach()
    return folder


def interrupt_on_call(monkeypatch, objective: type, call: int) -> None:
    """Make the ``call``-th ``objective.loss`` raise SIGINT (Ctrl-C) before computing the loss."""
    loss, calls = objective.loss, 0

    def interrupted(self, index):
        nonlocal calls
        calls += 1
        if calls == call:
            signal.raise_signal(signal.SIGINT)
        return loss(self, index)

    monkeypatch.setattr(objective, "loss", interrupted)


def change_loss(monkeypatch, objective: type, calls: Callable[[int], bool],
                change: Callable[[Any, dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> None:
    """Make ``objective.loss`` return ``change(objective_instance, terms)`` instead of its terms on the
    calls (counted from 1) that ``calls`` accepts."""
    loss, count = objective.loss, 0

    def changed(self, index):
        nonlocal count
        count += 1
        terms = loss(self, index)
        return change(self, terms) if calls(count) else terms

    monkeypatch.setattr(objective, "loss", changed)


def nan_pixel(objective: Any, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """For :func:`change_loss`: the pixel term (so the total) becomes NaN."""
    return {**terms, "pixel": terms["pixel"] * float("nan")}


def fit_config(data_dir: Path, out_dir: Path, **changes) -> FitConfig:
    """40 quick steps of bsa on ``tiny_cond_generator`` (class 1, no perceptual loss), with ``changes``."""
    settings = dict(data=str(data_dir), out=str(out_dir), base=TINY_COND, class_id="1", perceptual="none", steps=40,
                    log_every=10, checkpoint_every=20, samples=16, quiet=True)
    return FitConfig(**{**settings, **changes})
