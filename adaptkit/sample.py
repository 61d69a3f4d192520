"""Sampling a (possibly adapted) base: truncated-normal latents, class selection, interpolation."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .bases.base import BASE_TRUNCATION, Base, Truncation
from .errors import InvalidValueError, UnknownClassError, option
from .io.run_dir import Run

BatchCallback = Callable[[int], None]
Labels = torch.Tensor | None


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


def require_positive(value: int | float, what: str) -> None:
    if value <= 0:
        raise InvalidValueError(f"{what} must be positive, got {value}")


def require_steps(steps: int) -> None:
    if steps < 2:
        raise InvalidValueError(f"an interpolation needs at least 2 steps, got {steps}")


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
    require_positive(batch_size, "the batch size")
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
    base: Base, n: int, *, truncation: Truncation = BASE_TRUNCATION, class_id: int | str | None = None,
    seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` truncated-normal latents and their class ids (see ``class_labels``), both drawn from one
    generator seeded with ``seed``: the same seed gives the same latents on any device."""
    require_positive(n, "the number of images")
    generator = seeded(seed)
    z = base.sample_latents(n, truncation, generator=generator)
    return z, class_labels(base, n, class_id, generator)


def sample_learned_latents(latents: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` latents from the Gaussian fitted to a run's learned latents (N, d): their mean and
    sample covariance, as GLO samples (Bojanowski et al. 2018). With N ≤ d the covariance has rank
    N − 1, so the samples stay in the span of the learned latents around their mean. On the CPU."""
    require_positive(n, "the number of latents")
    if latents.dim() != 2 or len(latents) < 2:
        raise InvalidValueError("sampling from learned latents needs the latents of at least 2 training images")
    latents = latents.detach().float().cpu()
    mean = latents.mean(0)
    noise = torch.randn(n, len(latents), generator=generator)
    return mean + noise @ (latents - mean) / (len(latents) - 1) ** 0.5


def sample_images(
    base: Base,
    n: int,
    *,
    truncation: Truncation = BASE_TRUNCATION,
    class_id: int | str | None = None,
    seed: int | None = None,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """``n`` images in [-1, 1] (N, C, H, W) on the CPU from the base with its active adapters.

    Latents are N(0, I) truncated at ±``truncation`` (default: the base's own threshold; ``None``: none).
    For a conditional base, ``class_id`` (an id or a name from ``base.class_names``) picks the
    class of every image; ``None`` draws random classes. ``seed`` fixes latents and classes.
    """
    z, y = random_latents(base, n, truncation=truncation, class_id=class_id, seed=seed)
    return generate_images(base, z, y, batch_size=batch_size, on_batch=on_batch)


def run_class_labels(
    run: Run, n: int, class_id: int | str | None = None, generator: torch.Generator | None = None
) -> torch.Tensor | None:
    """``n`` class ids for samples of ``run``: ``class_id`` for all; else drawn from the classes of
    the run's training images (``run.trained_classes``), in their proportions; random classes when
    the run records none (see ``class_labels``)."""
    if class_id is not None or not run.base.conditional or run.trained_classes is None:
        return class_labels(run.base, n, class_id, generator)
    pool = run.trained_classes.cpu()
    return pool[torch.randint(len(pool), (n,), generator=generator)].to(run.base.device)


LATENT_SOURCES = ("normal", "learned")
"""Where ``sample_run`` draws latents: the base's (truncated) normal, or the Gaussian fitted to the
run's learned latents."""


def sample_run(
    run: Run, n: int, *, truncation: Truncation = BASE_TRUNCATION, class_id: int | str | None = None,
    seed: int | None = 0, latents: str = "normal", batch_size: int = 64, on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """``n`` images (N, C, H, W) in [-1, 1] on the CPU from the adapted base of ``run``: latents from
    ``latents`` (``normal``: the base's truncated normal; ``learned``: the Gaussian fitted to the
    run's learned latents, :func:`sample_learned_latents`, where ``truncation`` does not apply),
    classes from ``run_class_labels`` (so samples come in the proportions the adapter was trained
    on), both drawn from one generator seeded with ``seed``. Images are as the generator draws them
    (``run.as_trained`` turns them back for a run trained on inverted images)."""
    require_positive(n, "the number of samples")
    if latents not in LATENT_SOURCES:
        raise InvalidValueError(f"unknown latent source {latents!r}: choose one of {', '.join(LATENT_SOURCES)}")
    generator = seeded(seed)
    if latents == "learned":
        if run.latents is None:
            raise InvalidValueError(f"{run.folder} holds no learned latents to sample around")
        z = sample_learned_latents(run.latents, n, generator)
    else:
        z = run.base.sample_latents(n, truncation, generator=generator)
    y = run_class_labels(run, n, class_id, generator)
    return generate_images(run.base, z, y, batch_size=batch_size, on_batch=on_batch)


def interpolate_latents(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` latents on the straight line from ``z_a`` to ``z_b`` (the BSA paper's linear
    interpolation), stacked on a new first dimension; the ends are ``z_a`` and ``z_b`` exactly."""
    require_steps(steps)
    if z_a.shape != z_b.shape:
        raise InvalidValueError(f"cannot interpolate latents of shapes {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    t = torch.linspace(0, 1, steps, device=z_a.device, dtype=z_a.dtype).view(-1, *([1] * z_a.dim()))
    path = torch.lerp(z_a.unsqueeze(0), z_b.to(z_a).unsqueeze(0), t)
    path[0], path[-1] = z_a, z_b
    return path


@dataclass
class StripEnds:
    """The two ends of R interpolation rows: latents ``z_a``/``z_b`` (R, d) and, for conditional
    bases, class ids ``y_a``/``y_b`` (R,; ``y_b`` defaults to ``y_a``)."""

    z_a: torch.Tensor
    z_b: torch.Tensor
    y_a: Labels = None
    y_b: Labels = None

    def labels_at(self, t: float) -> Labels:
        """Class ids cannot be blended: each end's own, ``y_a`` before the middle, ``y_b`` from it on."""
        return self.y_a if t < 0.5 or self.y_b is None else self.y_b


def interpolate_images(
    base: Base,
    ends: StripEnds,
    steps: int = 8,
    *,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
    before_step: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Linear latent interpolation (the BSA paper's): images (R, steps, C, H, W), on the CPU, from
    each row of ``ends.z_a`` to the same row of ``ends.z_b``. Each step's R images are generated as
    ``generate_images(base, z_t, y_t)`` would, so the first and last columns equal the ends' own
    images exactly. ``before_step(t)`` runs before each step (morphing sets the adapter there)."""
    path = interpolate_latents(ends.z_a, ends.z_b, steps)
    columns = []
    for k, t in enumerate(torch.linspace(0, 1, steps).tolist()):
        t = 1.0 if k == steps - 1 else t
        if before_step is not None:
            before_step(t)
        columns.append(generate_images(base, path[k], ends.labels_at(t), batch_size=batch_size, on_batch=on_batch))
    return torch.stack(columns, dim=1)


def pick_rows(latents: torch.Tensor, labels: Labels, index: Sequence[int]) -> tuple[torch.Tensor, Labels]:
    """Rows ``index`` of learned latents and their labels, with a clear error for a bad index."""
    bad = [i for i in index if not -len(latents) <= i < len(latents)]
    if bad:
        raise InvalidValueError(f"latent {bad[0]} does not exist: the run has {len(latents)} learned latents")
    idx = torch.tensor(list(index), dtype=torch.long, device=latents.device)
    return latents[idx], labels[idx] if labels is not None else None


def learned_endpoints(
    base: Base, latents: torch.Tensor, labels: Labels, index: Sequence[int], class_id: int | str | None = None
) -> tuple[torch.Tensor, Labels]:
    """Rows ``index`` of a run's learned latents with their classes (or ``class_id`` for all)."""
    z, y = pick_rows(latents, labels, index)
    if class_id is not None or (base.conditional and y is None):
        if class_id is None:
            raise InvalidValueError(f"the run records no classes for its latents: choose one ({option('class_id')})")
        y = class_labels(base, len(z), class_id)
    return z, y


DEFAULT_ROWS = 4
"""Rows of an interpolation when none are asked for (fewer when the run has fewer learned pairs)."""


def consecutive_pairs(count: int, rows: int | None = None) -> list[tuple[int, int]]:
    """``rows`` pairs of learned latents to interpolate between: (0, 1), (1, 2), … (default: up to
    ``DEFAULT_ROWS``). More rows than the ``count - 1`` consecutive pairs is an ``InvalidValueError``."""
    if count < 2:
        raise InvalidValueError(f"interpolating learned latents needs at least 2, the run has {count}")
    if rows is None:
        rows = min(DEFAULT_ROWS, count - 1)
    require_positive(rows, "the number of rows")
    if rows > count - 1:
        raise InvalidValueError(f"{rows} rows asked, but the run's {count} learned latents give at most {count - 1} "
                                f"consecutive pairs (0→1 … {count - 2}→{count - 1}); choose others with {option('pairs')}")
    return [(r, r + 1) for r in range(rows)]


def interpolate_run(
    run: Run,
    steps: int = 8,
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    rows: int | None = None,
    random: bool = False,
    truncation: Truncation = BASE_TRUNCATION,
    class_id: int | str | None = None,
    seed: int | None = 0,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """Interpolation strips (R, steps, C, H, W) of a loaded run.

    Learned latents (default): one row per pair (i, j) of latent indices, by default ``rows`` pairs
    (0, 1), (1, 2), … (see ``consecutive_pairs``); the ends are exactly the run's reconstructions of
    images i and j. ``random=True``: ``rows`` (default ``DEFAULT_ROWS``) pairs of random latents (truncated normal, ``seed``), each row with
    one class, drawn as ``sample_run`` draws them (the run's training classes). ``class_id`` sets
    every image's class.
    """
    base = run.base
    if random:
        rows = DEFAULT_ROWS if rows is None else rows
        require_positive(rows, "the number of rows")
        generator = seeded(seed)
        z = base.sample_latents(2 * rows, truncation, generator=generator)
        y = run_class_labels(run, rows, class_id, generator)
        return interpolate_images(base, StripEnds(z[:rows], z[rows:], y), steps, batch_size=batch_size,
                                  on_batch=on_batch)
    if run.latents is None:
        raise InvalidValueError(f"{run.folder} has no learned latents: interpolate random ones instead ({option('random')})")
    pairs = list(pairs) if pairs else consecutive_pairs(len(run.latents), rows)
    z_a, y_a = learned_endpoints(base, run.latents, run.labels, [i for i, _ in pairs], class_id)
    z_b, y_b = learned_endpoints(base, run.latents, run.labels, [j for _, j in pairs], class_id)
    return interpolate_images(base, StripEnds(z_a, z_b, y_a, y_b), steps, batch_size=batch_size, on_batch=on_batch)
