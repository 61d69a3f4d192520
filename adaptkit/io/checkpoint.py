"""Adapter checkpoints: ``adapter_config.json`` + ``adapter_model.safetensors``, never the base.

The file format and loading from a local folder; :mod:`adaptkit.io.loading` adds Hub repo ids.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .._version import __version__
from ..core.context import CallSpec
from ..core.fingerprint import base_signature, describe_differences, fingerprint
from ..core.handle import AdapterHandle, attach_adapter
from ..core.plugins import adapter_class, adapter_distribution
from ..errors import BaseMismatchError, CheckpointError, InvalidCheckpointError
from .atomic import staged_folder, write_json
from .os_errors import storage_error, storage_errors

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT = "adaptkit.adapter"
FORMAT_VERSION = 1
LIBRARY = "adaptkit"
"""The top-level ``library`` key of ``adapter_config.json``: PEFT writes the same file names, and this
key (with ``format``) tells the two apart at a glance. Files written before it existed still load."""
CONFIG_FIELDS: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("adapter", (str,), True),
    ("name", (str,), False),
    ("config", (dict,), True),
    ("targets", (list,), True),
    ("call", (dict,), True),
    ("base", (dict,), True),
    ("base.id", (str, type(None)), False),
    ("base.revision", (str, type(None)), False),
    ("base.fingerprint", (str,), True),
    ("base.layers", (dict,), True),
    ("metadata", (dict,), False),
)
"""The fields of ``adapter_config.json`` that loading reads: (dotted name, JSON types, required)."""
_JSON_TYPES = {str: "a string", dict: "an object", list: "a list", type(None): "null", bool: "true/false",
               int: "a number", float: "a number"}


def save_adapter(
    handle: AdapterHandle,
    path: str | os.PathLike,
    *,
    base_id: str | None = None,
    base_revision: str | None = None,
    metadata: dict[str, Any] | None = None,
    bake: bool = True,
) -> Path:
    """Write ``handle``'s adapter to the folder ``path`` (created if needed); returns the folder.

    The folder is all-or-nothing: the files are written into a staging folder beside it and read
    back (config valid, tensors readable and finite) before they take the place of the old ones
    (the folder's other files are kept); on any error the folder is left as it was. Only adapter tensors are saved; the base is identified by
    ``base_id``/``base_revision`` and a fingerprint of its target layers' parameter names, shapes
    and dtypes. ``metadata`` (JSON-serializable) is stored as-is, merged over ``handle.metadata``.
    ``bake``: save the adapter's compact inference form where it has one (``handle`` itself is not
    changed); ``bake=False`` keeps the training-time parameters, for resuming.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} exists and is not a folder")
    signature = base_signature(handle.base, handle.targets)
    adapter_config, state = handle.baked_state() if bake else (handle.config, handle.state_dict())
    dist, version = adapter_distribution(handle.adapter_cls)
    config = {
        "library": LIBRARY,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "adapter": handle.adapter_cls.name,
        "plugin": {"distribution": dist, "version": version},
        "adaptkit_version": __version__,
        "name": handle.name,
        "config": adapter_config.to_dict(),
        "targets": handle.targets,
        "call": handle.call_spec.to_dict(),
        "base": {
            "id": base_id,
            "revision": base_revision,
            "fingerprint": fingerprint(signature),
            "layers": signature,
        },
        "metadata": {**handle.metadata, **(metadata or {})},
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InvalidCheckpointError(f"not saved to {folder}: tensor {name!r} holds NaN or infinite values "
                                         "(the adapter diverged)")
    with storage_errors(), staged_folder(folder, keep=lambda name: name not in (CONFIG_NAME, WEIGHTS_NAME)) as stage:
        save_file(tensors, str(stage / WEIGHTS_NAME), metadata={"format": FORMAT})
        write_json(stage / CONFIG_NAME, config)
        read_adapter_config(stage)
        read_adapter_tensors(stage)
    return folder


def read_adapter_config(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``adapter_config.json`` of an adapter folder, checked for the right format and
    fields (:func:`check_adapter_config`)."""
    file = Path(path) / CONFIG_NAME
    if not Path(path).is_dir():
        raise CheckpointError(f"adapter folder {path} does not exist")
    if not file.is_file():
        raise CheckpointError(f"{path} is not an adapter folder: {CONFIG_NAME} is missing")
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{file} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise storage_error(exc) or CheckpointError(f"{file} cannot be read ({exc})") from None
    if isinstance(config, dict) and "peft_type" in config:
        raise CheckpointError(f"{path} holds a PEFT adapter (peft_type {config['peft_type']}), not an adaptkit one: "
                              "load it with peft (PeftModel.from_pretrained)")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not an adaptkit adapter config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{file} has format version {config['format_version']}; this adaptkit reads up to "
            f"{FORMAT_VERSION} (upgrade adaptkit)"
        )
    check_adapter_config(config, file)
    return config


def check_adapter_config(config: dict[str, Any], file: Path) -> None:
    """Refuse a config with a field of :data:`CONFIG_FIELDS` missing or of the wrong type, a target
    that is not a layer name, or a call spec key ``CallSpec`` does not have (naming file and field)."""
    for name, types, required in CONFIG_FIELDS:
        parent, _, key = name.rpartition(".")
        holder = config[parent] if parent else config  # parents come first and are required objects
        if key not in holder:
            if required:
                raise InvalidCheckpointError(f"{file}: field {name!r} is missing")
            continue
        if not isinstance(holder[key], types):
            wanted, found = " or ".join(_JSON_TYPES[t] for t in types), _JSON_TYPES[type(holder[key])]
            raise InvalidCheckpointError(f"{file}: field {name!r} must be {wanted}, not {found}")
    if not all(isinstance(target, str) for target in config["targets"]):
        raise InvalidCheckpointError(f"{file}: field 'targets' must be a list of strings (layer names)")
    unknown = sorted(set(config["call"]) - {f.name for f in fields(CallSpec)})
    if unknown:
        raise InvalidCheckpointError(f"{file}: field 'call' has unknown keys {unknown}")


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a corrupt file, or one holding NaN or infinite values, is
    refused (naming the tensor)."""
    try:
        tensors = load_file(str(file))
    except OSError as exc:
        raise storage_error(exc) or CheckpointError(f"{file} cannot be read ({exc})") from None
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{file} is corrupt or truncated ({exc})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InvalidCheckpointError(f"{file}: tensor {name!r} holds NaN or infinite values")
    return tensors


def read_adapter_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The adapter tensors of a folder, with a clear error for a missing, corrupt or non-finite file."""
    file = Path(path) / WEIGHTS_NAME
    if not file.is_file():
        raise CheckpointError(f"{path} has no {WEIGHTS_NAME}")
    return read_tensors(file)


def check_base(config: dict[str, Any], model: nn.Module) -> None:
    """Fail, naming the layers, if ``model`` is not the base the adapter was saved from."""
    saved = config["base"]["layers"]
    current = base_signature(model, list(saved))
    if fingerprint(current) != config["base"]["fingerprint"]:
        diffs = describe_differences(saved, current)
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        base_id = config["base"].get("id")
        made_for = f" (made for {base_id})" if base_id else ""
        raise BaseMismatchError(f"this adapter was made for a different base{made_for}: {shown}")


def attach_saved_adapter(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    name: str | None = None,
    call: CallSpec | None = None,
) -> AdapterHandle:
    """Attach the adapter saved in the local ``folder`` to ``model`` (see :func:`adaptkit.load_adapter`):
    the base is checked against the saved fingerprint and the tensors are read before the model is touched."""
    config = read_adapter_config(folder)
    tensors = read_adapter_tensors(folder)
    check_base(config, model)
    cls = adapter_class(config["adapter"])
    handle = attach_adapter(
        model,
        cls,
        targets=list(config["targets"]),
        name=name or config.get("name", "default"),
        call=call or CallSpec.from_dict(config["call"]),
        **config["config"],
    )
    try:
        expected = handle.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
        if missing or unexpected or wrong:
            raise CheckpointError(
                f"{Path(folder) / WEIGHTS_NAME} does not match its config "
                f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}, wrong shape: {wrong[:3]})"
            )
        handle.load_state_dict(tensors)
    except Exception:
        handle.detach()
        raise
    handle.metadata = dict(config.get("metadata", {}))
    return handle
