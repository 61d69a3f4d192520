"""The fit plan: everything ``fit`` can check before it trains, checked before anything is written.

:func:`plan_fit` reads (the run folder's state, a resumed run's checkpoint, the base, the images)
and decides; it creates no folder, writes no file and takes no lock. The ``Trainer`` executes the
plan it returns.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bases import Base, load_base
from ..core.adapter import Adapter
from ..core.handle import check_attachment
from ..core.plugins import adapter_class
from ..data import ImageSet, describe_skipped, image_classes, load_image_folder
from ..errors import ConfigError, PluginNotFoundError, UnknownClassError, option
from ..io.image_folder import invert_images
from ..io.run_dir import CHECKPOINTS_DIR
from ..polarity import check_polarity, decide_inversion
from .config import DEFAULT_BASE, FIELDS, RESUMABLE, UNFREEZE_ALL, FitConfig
from .device import autocast_dtype
from .objectives import Objective, objective_class
from .perceptual import resolve_perceptual
from .state import latest_checkpoint, read_meta


@dataclass(frozen=True)
class OutFolder:
    """What a run does with its folder: start it, replace the previous run there, or resume one."""

    path: Path
    replace: bool = False
    """A previous run is there: the new one is staged beside it and replaces it when complete."""
    resume_from: Path | None = None
    """The checkpoint a resumed run continues from."""


def last_checkpoint(out: Path) -> Path:
    """The newest checkpoint of the run in ``out``; a ``ConfigError`` when there is none."""
    ckpt = latest_checkpoint(out / CHECKPOINTS_DIR)
    if ckpt is None:
        raise ConfigError(f"nothing to resume: {out / CHECKPOINTS_DIR} holds no checkpoint")
    return ckpt


def check_out(out: Path, overwrite: bool, data: str | None = None) -> bool:
    """A ``ConfigError`` unless ``out`` can take a new run: missing, empty but for the training
    images ``data`` (a run may keep its images inside it), or ``overwrite``. Returns whether a
    previous run (anything else in ``out``) is to be replaced."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{option('out', str(out))} exists and is not a folder")
    images = Path(data).resolve() if data else None
    held = out.is_dir() and any(p.resolve() != images for p in out.iterdir())
    if held and not overwrite:
        raise ConfigError(f"{out} is not empty: choose another {option('out')}, continue the run there with "
                          f"{option('resume', True)}, or replace it with {option('overwrite', True)}")
    return held


def out_folder(config: FitConfig) -> OutFolder:
    """The run folder's rule for ``config``: a new run needs :func:`check_out`; a resumed one a checkpoint."""
    out = config.out_dir
    if config.resume:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{option('out', str(out))} exists and is not a folder")
        return OutFolder(out, resume_from=last_checkpoint(out))
    return OutFolder(out, replace=check_out(out, config.overwrite, config.data))


def resumed_config(config: FitConfig, ckpt: Path) -> FitConfig:
    """``config`` for resuming from ``ckpt``: with the ``invert`` the run chose, and a ``ConfigError``
    when a setting a resumed run must keep differs from the checkpoint's."""
    # a setting newer than the checkpoint counts as its default, the behaviour before it existed
    saved = {**FitConfig().to_dict(), **read_meta(ckpt)["settings"]}
    if config.invert == "auto" and saved["invert"] in ("yes", "no"):   # keep the choice the run made
        config = dataclasses.replace(config, invert=saved["invert"])
    current = config.to_dict()
    changed = [n for n in FIELDS if n not in RESUMABLE and saved[n] != current[n]]
    if changed:
        shown = ", ".join(f"{option(n)} {saved[n]!r} → {current[n]!r}" for n in changed[:4])
        kept = ", ".join(option(n) for n in ("steps", "checkpoint_every", "log_every", "device")) + f" and {option('quiet')}"
        raise ConfigError(f"cannot resume {config.out_dir} with different settings ({shown}); only {kept} may change")
    return config


def load_training_base(config: FitConfig, device: torch.device) -> Base:
    try:
        return load_base(config.base, latent_dim=config.latent_dim, num_classes=config.num_classes, device=device)
    except PluginNotFoundError as exc:
        if config.base == DEFAULT_BASE:
            raise ConfigError(f"the default base {DEFAULT_BASE} is not installed: give a {option('base')} (see "
                              "`adaptkit bases`) or python:package.module:factory") from None
        raise exc


def unfrozen_names(generator: nn.Module, selectors: list[str]) -> tuple[str, ...]:
    """The names of the generator parameters ``selectors`` picks to train: ``all``, or regexes
    full-matching module paths (each must match a layer)."""
    if UNFREEZE_ALL in selectors:
        return tuple(n for n, _ in generator.named_parameters())
    chosen, paths = {}, [n for n, _ in generator.named_modules() if n]
    for pattern in selectors:
        try:
            matched = [p for p in paths if re.fullmatch(pattern, p)]
        except re.error as exc:
            raise ConfigError(f"{option('unfreeze', pattern)} is not a valid regular expression ({exc})") from None
        if not matched:
            raise ConfigError(f"{option('unfreeze', pattern)} matches no layer of the base (its layers include: "
                              f"{', '.join(paths[:8])})")
        for path in matched:
            chosen.update(dict.fromkeys(f"{path}.{n}" for n, _ in generator.get_submodule(path).named_parameters()))
    return tuple(chosen)


def new_class_folders(data: ImageSet, base: Base, adapter: str | type[Adapter],
                      options: dict[str, Any]) -> list[str] | None:
    """For an adapter that adds classes (``Adapter.new_classes``): the class folders that name no
    class of the base, sorted, as the new classes' names. ``options`` are completed in place to add
    that many classes (``Adapter.request_new_classes``); options adding a different number are a
    ``ConfigError``. ``None`` when the adapter adds no classes or no folder names a new class."""
    if not base.conditional:
        return None
    names = sorted({f for f in data.folders if f is not None and not _is_base_class(base, f)})
    if not names:
        return None
    cls = adapter_class(adapter)
    requested = cls.request_new_classes(dict(options), len(names))
    added = cls.new_classes(cls.Config.from_dict(requested))
    if not added:
        return None
    if added != len(names):
        raise ConfigError(f"the {cls.name} adapter's options add {added} class(es), but {len(names)} class "
                          f"folder(s) of {data.root} name no class of base {base.id} ({', '.join(names)})")
    options.update(requested)
    return names


def _is_base_class(base: Base, name: str) -> bool:
    try:
        base.class_id(name)
    except UnknownClassError:
        return False
    return True


def _labels(data: ImageSet, base: Base, class_id: str | None, new_classes: list[str] | None) -> torch.Tensor | None:
    """Each image's class (see ``image_classes``), the adapter's new classes counted after the base's."""
    if not new_classes:
        return image_classes(data, base, class_id)
    extended = dataclasses.replace(base)  # add_classes sets new values: ``base`` keeps its own
    extended.add_classes(len(new_classes), new_classes)
    return image_classes(data, extended, class_id)


@dataclass(frozen=True)
class FitPlan:
    """A run of ``fit``, checked: where it goes, what it trains, on what. Made by :func:`plan_fit`."""

    config: FitConfig
    """The settings as resolved (``invert`` auto → yes/no; a resumed run's kept choice)."""
    folder: OutFolder
    device: torch.device
    amp: torch.dtype | None
    base: Base
    objective: type[Objective]
    adapter: type[Adapter] | None
    """The adapter plugin, resolved once (None for ``adapter="none"``)."""
    adapter_options: dict[str, Any]
    """The base's recommended options with the user's over them (and the new classes requested)."""
    new_class_names: list[str] | None
    data: ImageSet
    """The training images (inverted when ``config.invert`` is yes)."""
    labels: torch.Tensor | None
    unfrozen: tuple[str, ...]
    """The generator parameters trained besides the adapter, by name."""
    perceptual: str
    notes: tuple[str, ...]
    """Lines to tell the user before training (skipped files, the images' inversion)."""

    @property
    def out(self) -> Path:
        return self.folder.path

    def adapter_lr(self) -> float:
        """``lr_adapter``, else the adapter's recommended rate for the objective, else the objective's."""
        cfg = self.config
        if cfg.lr_adapter is not None:
            return cfg.lr_adapter
        recommended = self.adapter.recommended_lr if self.adapter is not None else {}
        return recommended.get(cfg.objective, self.objective.default_lr_adapter)


def plan_fit(config: FitConfig, device: torch.device, world_size: int = 1) -> FitPlan:
    """Check ``config`` (already ``validate``d) for a run on ``device`` with ``world_size`` processes:
    the run folder (see :func:`out_folder`; a resumed run's settings and images), the base, the
    objective and its perceptual loss, the images and their classes, the adapter and its options
    (resolved once), the layers to unfreeze. Seeds torch's global generator with ``config.seed``
    (a python: base is built from it); creates, writes and locks nothing."""
    folder = out_folder(config)
    resume_meta = None
    if folder.resume_from is not None:
        config = resumed_config(config, folder.resume_from)
        resume_meta = read_meta(folder.resume_from)
    amp = autocast_dtype(config.precision, device)
    torch.manual_seed(config.seed)
    base = load_training_base(config, device)
    objective = objective_class(config.objective)
    objective_note = objective.check_base(base, config)
    if not objective.uses_perceptual and config.perceptual not in ("auto", "none"):
        raise ConfigError(f"{option('objective', config.objective)} uses no perceptual loss: leave "
                          f"{option('perceptual')} at auto or none")
    adapter = adapter_class(config.adapter) if config.adapter != "none" else None
    data = load_image_folder(config.data, channels=base.channels, resolution=base.resolution, strict=config.strict)
    if config.step_batch(len(data)) < world_size:
        raise ConfigError(f"{option('batch_size', config.batch_size)} is smaller than the {world_size} processes")
    if resume_meta is not None and resume_meta["files"] != [f.as_posix() for f in data.files]:
        raise ConfigError(f"the images in {data.root} changed since the run in {folder.path} started; "
                          "resume with the same images or start a new run")
    notes = [objective_note] if objective_note else []
    if data.skipped:
        notes.append(f"[yellow]warning:[/] skipped {len(data.skipped)} file(s) in {data.root}: "
                     f"{describe_skipped(data.skipped)}")
    invert, message = decide_inversion(config.invert, check_polarity(data.images, base, config.seed), base.id)
    notes += [message] if message else []
    if invert:
        data = dataclasses.replace(data, images=invert_images(data.images))
    config = dataclasses.replace(config, invert="yes" if invert else "no")
    options, new_class_names = {}, None
    if adapter is not None:
        options = {**base.adapter_options(adapter), **config.adapter_options}
        new_class_names = new_class_folders(data, base, adapter, options)
        check_attachment(base.generator, adapter, call=base.call, **options)
    labels = _labels(data, base, config.class_id, new_class_names)
    unfrozen = unfrozen_names(base.generator, config.unfreeze) if config.unfreeze else ()
    perceptual = resolve_perceptual(config.perceptual if objective.uses_perceptual else "none", base,
                                    config.perceptual_file)
    return FitPlan(config=config, folder=folder, device=device, amp=amp, base=base, objective=objective,
                   adapter=adapter, adapter_options=options, new_class_names=new_class_names, data=data,
                   labels=labels, unfrozen=unfrozen, perceptual=perceptual, notes=tuple(notes))
