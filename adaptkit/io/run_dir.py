"""A fit run folder: the adapter checkpoint plus the learned latents, pictures, log and summary.

This module owns the name of every file in a run folder; other modules import the names from here.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..bases import Base, load_base
from ..core.handle import AdapterHandle
from ..errors import CheckpointError, InvalidCheckpointError, OutputPathError
from .atomic import atomic_path
from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, attach_saved_adapter, read_adapter_config, read_tensors
from .image_folder import invert_images

LATENTS_NAME = "latents.safetensors"
SAMPLES_PNG = "samples.png"
RECONSTRUCTIONS_PNG = "reconstructions.png"
INTERPOLATION_PNG = "interpolation.png"
LOSS_PNG = "loss.png"
METRICS_PNG = "metrics.png"
"""The evaluation metrics during training (``--eval-every``), one panel each."""
NEAREST_PNG = "nearest.png"
"""Samples beside their nearest training images (``--eval-every``; ``adaptkit eval --nearest``)."""
LOG_CSV = "log.csv"
SUMMARY_JSON = "summary.json"
CHECKPOINTS_DIR = "checkpoints"
BASE_WEIGHTS_NAME = "base_weights.safetensors"
"""The base tensors a run fine-tuned (``--unfreeze``), by their names in the generator."""
TENSORBOARD_DIR = "tensorboard"
"""TensorBoard event files of ``adaptkit fit --report-to tensorboard``."""
LAST_DIR = "last"
"""With ``--eval-every`` the top of a run folder holds the best step's model; this subfolder holds the
last step's (adapter, base weights, latents), itself a run folder to sample from."""
RUN_FILES = (CONFIG_NAME, WEIGHTS_NAME, BASE_WEIGHTS_NAME, LATENTS_NAME, SAMPLES_PNG, RECONSTRUCTIONS_PNG,
             INTERPOLATION_PNG, LOSS_PNG, METRICS_PNG, NEAREST_PNG, LOG_CSV, SUMMARY_JSON)
"""The files ``adaptkit fit`` writes at the top of a run folder (beside ``RUN_DIRS``)."""
RUN_DIRS = (CHECKPOINTS_DIR, LAST_DIR, TENSORBOARD_DIR)
"""The subfolders ``adaptkit fit`` writes in a run folder."""
EVAL_JSON = "eval.json"
"""Where ``adaptkit eval RUN --json RUN/eval.json`` puts the run's scores; ``push`` puts them on the card."""
CARD_NAME = "README.md"
"""The model card ``adaptkit push`` generates (and keeps beside the run once pushed)."""
SHARED_DATA = (CONFIG_NAME, WEIGHTS_NAME, LATENTS_NAME, EVAL_JSON)
"""The data files of a run that ``push`` shares, besides its top-level pictures; never base weights, logs or
training state."""


def is_run(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a run to sample from: an adapter (``adaptkit fit`` with an adapter, or
    ``save_adapter``) or fine-tuned base weights (``adaptkit fit --adapter none --unfreeze …``)."""
    return any((Path(folder) / name).is_file() for name in (CONFIG_NAME, BASE_WEIGHTS_NAME))


def shared_files(folder: str | os.PathLike) -> list[str]:
    """The names of the files of ``folder`` that ``push`` shares: :data:`SHARED_DATA` and every top-level PNG."""
    folder = Path(folder)
    names = [n for n in SHARED_DATA if (folder / n).is_file()]
    return names + sorted(p.name for p in folder.glob("*.png") if p.is_file())


def is_run_own(name: str) -> bool:
    """Whether ``name`` (at the top of a run folder) belongs to the run: its files, its subfolders
    (checkpoints, ``last/``, TensorBoard logs) or its eval report. A new run over an old one
    (``--overwrite``) keeps everything else."""
    return name in (*RUN_FILES, *RUN_DIRS, EVAL_JSON)


def refuse_run_file(out: str | os.PathLike, folder: str | os.PathLike, option: str) -> None:
    """Refuse an output path (given as ``option``) that is one of the run ``folder``'s own files or
    inside one of its ``RUN_DIRS``: a command's output never overwrites the run it reads."""
    target = Path(out).resolve()
    for name in (*RUN_FILES, *RUN_DIRS):
        own = (Path(folder) / name).resolve()
        if target == own or own in target.parents:
            raise OutputPathError(f"{option} {out} would overwrite {name} of run {folder}; choose another path")


def check_folder_files(folder: str | os.PathLike) -> None:
    """Read back a run or adapter folder before it is swapped in: its adapter config (valid), every
    top-level safetensors file (readable, finite) and ``summary.json`` (JSON); a ``CheckpointError``
    naming the first bad file."""
    folder = Path(folder)
    if (folder / CONFIG_NAME).is_file():
        read_adapter_config(folder)
    for file in sorted(folder.glob("*.safetensors")):
        read_tensors(file)
    if (folder / SUMMARY_JSON).is_file():
        try:
            json.loads((folder / SUMMARY_JSON).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{folder / SUMMARY_JSON} is not valid JSON ({exc})") from None


def save_latents(folder: str | os.PathLike, latents: torch.Tensor, labels: torch.Tensor | None) -> None:
    """Write the per-image latents (N, d) and, for conditional bases, their class ids (N,)."""
    tensors = {"latents": latents.detach().cpu().contiguous()}
    if labels is not None:
        tensors["labels"] = labels.detach().cpu().to(torch.int64).contiguous()
    with atomic_path(Path(folder) / LATENTS_NAME) as tmp:
        save_file(tensors, str(tmp))


def load_latents(folder: str | os.PathLike, base: Base) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A run's latents (N, d) and class ids (N,) or ``None``, checked against ``base``: finite, d its
    latent size, one int64 class id per latent in the range of its classes."""
    file = Path(folder) / LATENTS_NAME
    if not file.is_file():
        raise CheckpointError(f"{folder} has no {LATENTS_NAME} (is it an `adaptkit fit` run folder?)")
    tensors = read_tensors(file)
    if "latents" not in tensors:
        raise InvalidCheckpointError(f"{file}: holds no 'latents' tensor")
    latents, labels = tensors["latents"], tensors.get("labels")
    if latents.dim() != 2 or latents.shape[1] != base.latent_dim or not latents.is_floating_point():
        raise InvalidCheckpointError(f"{file}: tensor 'latents' must be floats of shape (N, {base.latent_dim}) "
                                     f"(the latent size of base {base.id}), not {_describe(latents)}")
    if labels is None:
        return latents, None
    if labels.shape != (len(latents),) or labels.dtype != torch.int64:
        raise InvalidCheckpointError(f"{file}: tensor 'labels' must be {len(latents)} int64 class ids "
                                     f"(one per latent), not {_describe(labels)}")
    if base.conditional:
        outside = labels[(labels < 0) | (labels >= base.num_classes)]
        if len(outside):
            raise InvalidCheckpointError(f"{file}: tensor 'labels' holds class {outside[0].item()}, out of range "
                                         f"for base {base.id} ({base.num_classes} classes)")
    return latents, labels


def _describe(tensor: torch.Tensor) -> str:
    """``float32 (3, 8)``."""
    return f"{str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)}"


def save_base_weights(folder: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Write fine-tuned base tensors (generator parameter name → tensor)."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(Path(folder) / BASE_WEIGHTS_NAME) as tmp:
        save_file(cpu, str(tmp))


def load_base_weights(folder: str | os.PathLike, base: Base) -> None:
    """Copy a run's fine-tuned base tensors into ``base``'s generator (in place)."""
    file = Path(folder) / BASE_WEIGHTS_NAME
    tensors = read_tensors(file)
    params = dict(base.generator.named_parameters())
    wrong = [k for k, v in tensors.items() if k not in params or params[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{file} does not fit base {base.id} (e.g. {wrong[0]!r})")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)


@dataclass
class Run:
    """A loaded run: the base with the adapter attached (``None`` for a run that fine-tuned the
    base without an adapter), and the learned latents. ``invert``: the run trained on inverted
    images (``fit --invert``): its generator draws them inverted, and its real images must be
    inverted to compare (``as_trained``) or its samples inverted back to look like them."""

    folder: Path
    base: Base
    handle: AdapterHandle | None
    latents: torch.Tensor | None
    labels: torch.Tensor | None
    config: dict[str, Any]
    invert: bool = False
    trained_classes: torch.Tensor | None = None
    """The class of each training image (the latents' labels), else the classes a run without
    latents trained on (``summary.json``); None when the run records none."""

    def as_trained(self, images: torch.Tensor) -> torch.Tensor:
        """Images of the training images' kind as the generator learned them (inverted when the run
        trained on inverted images); the same function turns the generator's images back."""
        return invert_images(images) if self.invert else images


def base_options(config: dict[str, Any]) -> dict[str, Any]:
    """The ``load_base`` keyword arguments a run recorded (for bases that need them)."""
    return dict(config.get("metadata", {}).get("base_options", {}))


def _summary(folder: Path) -> dict[str, Any] | None:
    """The run's ``summary.json``, None when there is none; a ``CheckpointError`` when unreadable."""
    try:
        return json.loads((folder / SUMMARY_JSON).read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{folder / SUMMARY_JSON} is not valid JSON ({exc})") from None


def recorded_training(folder: Path, config: dict[str, Any] | None) -> dict[str, Any]:
    """The fit settings a run recorded (in its adapter's metadata, else its ``summary.json``); empty
    for an adapter saved without them."""
    if config is not None and "training" in config.get("metadata", {}):
        return dict(config["metadata"]["training"])
    return dict((_summary(folder) or {}).get("training", {}))


def trained_inverted(folder: str | os.PathLike) -> bool:
    """Whether the run in ``folder`` trained on inverted images (``fit --invert``, as resolved)."""
    folder = Path(folder)
    config = read_adapter_config(folder) if (folder / CONFIG_NAME).is_file() else None
    return recorded_training(folder, config).get("invert") == "yes"


def recorded_base(folder: Path, config: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The base id and ``load_base`` options a folder records: in its adapter config, or in the
    ``summary.json`` of a run without an adapter."""
    if config is not None:
        base_id, options = config["base"].get("id"), base_options(config)
    else:
        summary = _summary(folder)
        if summary is None:
            raise CheckpointError(f"{folder} does not record its base ({SUMMARY_JSON} is missing); "
                                  "pass the base explicitly")
        recorded = summary.get("base", {})
        base_id, options = recorded.get("id"), dict(recorded.get("options", {}))
    if not base_id:
        raise CheckpointError(f"{folder} does not record its base; pass the base explicitly")
    return base_id, options


def load_run(
    folder: str | os.PathLike,
    *,
    base: Base | None = None,
    device: torch.device | str | None = None,
    name: str | None = None,
) -> Run:
    """Load the base a run was made for (unless given), apply the base layers it fine-tuned (if any;
    a given ``base`` is changed in place), attach its adapter, read its latents.

    Latents are optional (a bare ``save_adapter`` folder has none). Classes the adapter adds are
    appended to ``base.class_names``, named by the checkpoint's ``metadata["class_names"]``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"run folder {folder} does not exist")
    if not is_run(folder):
        raise CheckpointError(f"{folder} is neither an adapter folder nor an `adaptkit fit` run folder "
                              f"({CONFIG_NAME} and {BASE_WEIGHTS_NAME} are missing)")
    config = read_adapter_config(folder) if (folder / CONFIG_NAME).is_file() else None
    if base is None:
        base_id, options = recorded_base(folder, config)
        base = load_base(base_id, device=device, **options)
    if (folder / BASE_WEIGHTS_NAME).is_file():
        load_base_weights(folder, base)
    handle = attach_saved_adapter(base.generator, folder, name=name) if config is not None else None
    if handle is not None and handle.new_classes:
        base = replace(base)  # a caller's Base keeps its own class list
        try:
            base.add_classes(handle.new_classes, handle.metadata.get("class_names"))
        except ValueError as exc:
            handle.detach()
            raise CheckpointError(f"{folder}: {exc}") from None
    latents = labels = None
    if (folder / LATENTS_NAME).is_file():
        try:
            latents, labels = load_latents(folder, base)
        except CheckpointError:
            if handle is not None:
                handle.detach()
            raise
        latents = latents.to(base.device)
        labels = labels.to(base.device) if labels is not None else None
    invert = recorded_training(folder, config).get("invert") == "yes"
    return Run(folder, base, handle, latents, labels, config or {}, invert, _trained_classes(folder, base, labels))


def _trained_classes(folder: Path, base: Base, labels: torch.Tensor | None) -> torch.Tensor | None:
    if labels is not None or not base.conditional:
        return labels
    classes = (_summary(folder) or {}).get("classes")
    if not classes or not all(isinstance(c, int) and 0 <= c < base.num_classes for c in classes):
        return None
    return torch.tensor(classes, dtype=torch.long, device=base.device)
