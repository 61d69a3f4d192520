"""``load_adapter``: attach an adapter from a local folder or a Hub repo id."""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ..core.context import CallSpec
from ..core.handle import AdapterHandle
from ..errors import CheckpointError, HubConnectionError, HubNotFoundError
from .checkpoint import attach_saved_adapter


def adapter_folder(path_or_repo_id: str | os.PathLike, revision: str | None = None) -> Path:
    """A local adapter folder as is; a ``user/name`` that is not a local folder from the Hub."""
    path = Path(path_or_repo_id)
    if path.is_dir() or not isinstance(path_or_repo_id, str):
        if revision is not None:
            raise CheckpointError(f"revision= is for Hub repo ids, not for the local path {path}")
        return path
    from .hub import download_adapter, looks_like_repo_id  # the Hub client loads only for Hub ids

    if not looks_like_repo_id(path_or_repo_id):
        if revision is not None:
            raise CheckpointError(f"{path_or_repo_id!r} is not a Hub repo id (user/name) nor a local folder")
        return path
    try:
        return download_adapter(path_or_repo_id, revision=revision)
    except (HubNotFoundError, HubConnectionError) as exc:
        raise type(exc)(f"{path_or_repo_id} is not a local folder, and {exc}") from exc


def load_adapter(
    model: nn.Module,
    path_or_repo_id: str | os.PathLike,
    *,
    revision: str | None = None,
    name: str | None = None,
    call: CallSpec | None = None,
) -> AdapterHandle:
    """Attach the adapter saved in a folder, or in a Hub repo ``user/name``, to ``model``.

    A string that is not an existing folder and looks like ``user/name`` is downloaded through the
    Hub cache, quietly (``revision``: a branch, tag or commit; the cache only when ``HF_HUB_OFFLINE=1``).
    The base is checked against the saved fingerprint first, and the tensors are read before the
    model is touched. ``name`` defaults to the saved name; ``call`` to the saved call spec.
    """
    return attach_saved_adapter(model, adapter_folder(path_or_repo_id, revision), name=name, call=call)
