"""Sampling a (possibly adapted) base: truncated-normal latents, class selection, interpolation."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from .bases.base import Base
from .errors import InvalidValueError, UnknownClassError

BatchCallback = Callable[[int], None]


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put every sub-module in eval mode, and restore each one's own mode afterwards."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.training = training


def _float_dtype(module: nn.Module) -> torch.dtype:
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


def generate_images(
    base: Base,
    z: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """Images in [-1, 1] for latents ``z`` (N, d) and class ids ``y`` (N,), computed in batches
    without gradients and in eval mode, returned on the CPU as float32. ``on_batch(k)`` is called
    after each batch of ``k`` images (for progress bars)."""
    if batch_size <= 0:
        raise InvalidValueError(f"batch size must be positive, got {batch_size}")
    z = z.to(device=base.device, dtype=_float_dtype(base.generator))
    y = y.to(base.device) if y is not None else None
    out = []
    with torch.no_grad(), eval_mode(base.generator):
        for start in range(0, len(z), batch_size):
            end = start + batch_size
            out.append(base.generate(z[start:end], y[start:end] if y is not None else None).float().cpu())
            if on_batch is not None:
                on_batch(len(out[-1]))
    return torch.cat(out) if out else torch.empty(0, base.channels, base.resolution, base.resolution)


def class_labels(
    base: Base, n: int, class_id: int | str | None = None, generator: torch.Generator | None = None
) -> torch.Tensor | None:
    """``n`` class ids for a conditional base: ``class_id`` (an id or a name) repeated, or uniformly
    random ids drawn from ``generator``; ``None`` for an unconditional base."""
    if not base.conditional:
        if class_id is not None:
            raise UnknownClassError(f"base {base.id} is unconditional: it has no classes to choose from")
        return None
    if class_id is None:
        return torch.randint(base.num_classes, (n,), generator=generator).to(base.device)  # type: ignore[arg-type]
    return torch.full((n,), base.class_id(class_id), dtype=torch.long, device=base.device)


def seeded(seed: int | None) -> torch.Generator | None:
    """A CPU ``torch.Generator`` seeded with ``seed`` (``None``: use torch's global RNG)."""
    return torch.Generator().manual_seed(seed) if seed is not None else None


def random_latents(
    base: Base, n: int, *, truncation: float | None = 0.4, class_id: int | str | None = None,
    seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` truncated-normal latents and their class ids (see ``class_labels``), both drawn from one
    generator seeded with ``seed``: the same seed gives the same latents on any device."""
    if n <= 0:
        raise InvalidValueError(f"the number of images must be positive, got {n}")
    if truncation is not None and truncation <= 0:
        raise InvalidValueError(f"the truncation threshold must be positive, got {truncation}")
    generator = seeded(seed)
    z = base.sample_latents(n, truncation, generator=generator)
    return z, class_labels(base, n, class_id, generator)


def sample_images(
    base: Base,
    n: int,
    *,
    truncation: float | None = 0.4,
    class_id: int | str | None = None,
    seed: int | None = None,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """``n`` images in [-1, 1] (N, C, H, W) on the CPU from the base with its active adapters.

    Latents are N(0, I) truncated at ±``truncation`` (the papers' 0.4; ``None``: no truncation).
    For a conditional base, ``class_id`` (an id or a name from ``base.class_names``) picks the
    class of every image; ``None`` draws random classes. ``seed`` fixes latents and classes.
    """
    z, y = random_latents(base, n, truncation=truncation, class_id=class_id, seed=seed)
    return generate_images(base, z, y, batch_size=batch_size, on_batch=on_batch)


def interpolate_latents(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` latents on the straight line from ``z_a`` to ``z_b`` (the BSA paper's linear
    interpolation), stacked on a new first dimension; the ends are ``z_a`` and ``z_b`` exactly."""
    if steps < 2:
        raise InvalidValueError(f"an interpolation needs at least 2 steps, got {steps}")
    if z_a.shape != z_b.shape:
        raise InvalidValueError(f"cannot interpolate latents of shapes {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    t = torch.linspace(0, 1, steps, device=z_a.device, dtype=z_a.dtype).view(-1, *([1] * z_a.dim()))
    path = torch.lerp(z_a.unsqueeze(0), z_b.to(z_a).unsqueeze(0), t)
    path[0], path[-1] = z_a, z_b
    return path
