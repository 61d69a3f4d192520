"""Domain morphing (the BSA paper): blend the adapter tensors, and latents, of two adaptations of
one base, from A's own images at t = 0 to B's at t = 1."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .bases.base import BASE_TRUNCATION, Base, Truncation
from .core.handle import AdapterHandle
from .errors import IncompatibleAdaptersError
from .io.checkpoint import check_base, read_adapter_config, read_adapter_tensors
from .io.run_dir import LATENTS_NAME, load_latents, load_run
from .sample import (
    BatchCallback,
    StripEnds,
    interpolate_images,
    learned_endpoints,
    require_positive,
    require_steps,
    run_class_labels,
    seeded,
)

Tensors = dict[str, torch.Tensor]


def check_morphable(config_a: dict[str, Any], config_b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> None:
    """Refuse, saying why, two adapters that are not of one base, adapter type, target set and options."""
    a, b = names
    base_a, base_b = config_a["base"], config_b["base"]
    if base_a.get("id") and base_b.get("id") and base_a["id"] != base_b["id"]:
        problem = f"different bases ({base_a['id']} vs {base_b['id']})"
    elif config_a["adapter"] != config_b["adapter"]:
        problem = f"different adapter types ({config_a['adapter']} vs {config_b['adapter']})"
    elif config_a["targets"] != config_b["targets"]:
        only_a = sorted(set(config_a["targets"]) - set(config_b["targets"]))
        only_b = sorted(set(config_b["targets"]) - set(config_a["targets"]))
        problem = f"different targets (only in {a}: {only_a[:3] or '-'}; only in {b}: {only_b[:3] or '-'})"
    elif base_a.get("fingerprint") != base_b.get("fingerprint"):
        problem = "different bases (their target layers differ)"
    elif config_a["config"] != config_b["config"]:
        keys = sorted(k for k in {*config_a["config"], *config_b["config"]}
                      if config_a["config"].get(k) != config_b["config"].get(k))
        shown = ", ".join(f"{k}: {config_a['config'].get(k)!r} vs {config_b['config'].get(k)!r}" for k in keys)
        problem = f"different adapter options ({shown})"
    else:
        return
    raise IncompatibleAdaptersError(f"cannot morph {a} into {b}: {problem}")


def check_tensors(a: Tensors, b: Tensors) -> None:
    """Both adapters must hold the same tensors (names, shapes, and equal non-float values)."""
    if set(a) != set(b):
        diff = sorted(set(a) ^ set(b))
        raise IncompatibleAdaptersError(f"cannot morph: the adapters hold different tensors ({diff[:3]})")
    for key in a:
        if a[key].shape != b[key].shape:
            raise IncompatibleAdaptersError(
                f"cannot morph: {key} has shape {tuple(a[key].shape)} in one adapter, {tuple(b[key].shape)} in the other"
            )
        if not a[key].is_floating_point() and not torch.equal(a[key], b[key].to(a[key].device)):
            raise IncompatibleAdaptersError(f"cannot morph: {key} holds different non-float values")


def lerp_tensors(a: Tensors, b: Tensors, t: float) -> Tensors:
    """``(1 − t)·a + t·b`` for every float tensor; ``a``/``b`` themselves at t = 0/1 (not a rounded blend)."""
    if t == 0:
        return dict(a)
    if t == 1:
        return dict(b)
    return {k: torch.lerp(v, b[k].to(v), t) if v.is_floating_point() else v for k, v in a.items()}


def morph_images(
    base: Base,
    handle: AdapterHandle,
    tensors_a: Tensors,
    tensors_b: Tensors,
    ends: StripEnds,
    steps: int = 8,
    *,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """Images (R, steps, C, H, W): at each t the handle holds ``lerp(tensors_a, tensors_b, t)`` and
    the latents are ``lerp(ends.z_a, ends.z_b, t)``. Column 0 is exactly A's output for the ``a``
    ends, the last column exactly B's for the ``b`` ends. The handle's own tensors are restored after."""
    check_tensors(tensors_a, tensors_b)
    device = base.device
    a = {k: v.to(device) for k, v in tensors_a.items()}
    b = {k: v.to(device) for k, v in tensors_b.items()}
    saved = {k: v.detach().clone() for k, v in handle.state_dict().items()}
    try:
        return interpolate_images(
            base, ends, steps, batch_size=batch_size, on_batch=on_batch,
            before_step=lambda t: handle.load_state_dict(lerp_tensors(a, b, t)),
        )
    finally:
        handle.load_state_dict(saved)


def morph_runs(
    folder_a: str | os.PathLike,
    folder_b: str | os.PathLike,
    steps: int = 8,
    *,
    rows: int = 4,
    random: bool = False,
    truncation: Truncation = BASE_TRUNCATION,
    class_id: int | str | None = None,
    seed: int | None = 0,
    base: Base | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> torch.Tensor:
    """Morph strips (R, steps, C, H, W) from run A's adapter to run B's, on the CPU.

    Row r goes from A's learned latent r to B's learned latent r (at most ``rows`` rows and as many
    as the larger run has; the smaller run's indices wrap around), so its ends are exactly A's and
    B's reconstructions. ``random=True`` (or a run without latents) uses one random latent per row
    at both ends (truncated normal, ``seed``), in the classes of A's training images as ``sample_run``
    draws them. ``class_id`` sets every image's class. ``base``
    defaults to the one run A records; A's adapter is detached afterwards.
    """
    require_positive(rows, "the number of rows")
    require_steps(steps)
    name_a, name_b = Path(folder_a).name, Path(folder_b).name
    config_b = read_adapter_config(folder_b)
    check_morphable(read_adapter_config(folder_a), config_b, (name_a, name_b))
    run = load_run(folder_a, base=base, device=device, name="morph")
    try:
        check_base(config_b, run.base.generator)
        tensors_b = read_adapter_tensors(folder_b)
        tensors_a = {k: v.detach().clone() for k, v in run.handle.state_dict().items()}
        latents_b = load_latents(folder_b, run.base) if (Path(folder_b) / LATENTS_NAME).is_file() else None
        if random or run.latents is None or latents_b is None:
            generator = seeded(seed)
            z = run.base.sample_latents(rows, truncation, generator=generator)
            y = run_class_labels(run, rows, class_id, generator)
            ends = StripEnds(z, z, y, y)
        else:
            index = list(range(min(rows, max(len(run.latents), len(latents_b[0])))))
            z_a, y_a = learned_endpoints(run.base, run.latents, run.labels, _wrap(index, run.latents), class_id)
            z_b, y_b = learned_endpoints(run.base, *latents_b, _wrap(index, latents_b[0]), class_id)
            ends = StripEnds(z_a, z_b, y_a, y_b)
        return morph_images(run.base, run.handle, tensors_a, tensors_b, ends, steps, batch_size=batch_size,
                            on_batch=on_batch)
    finally:
        run.handle.detach()


def _wrap(index: list[int], latents: torch.Tensor) -> list[int]:
    return [i % len(latents) for i in index]
