"""torchvision's pretrained ImageNet weights (VGG16, AlexNet, Inception-v3): where they are kept,
when they are downloaded, how they are read. The one policy for training and evaluation:

- a weights file the caller names is used as is (it must exist);
- otherwise torchvision's cache, ``$TORCH_HOME/hub/checkpoints``, shared with torchvision itself;
- a network the user asks for by name is downloaded into that cache once, if it is not there;
- an ``auto`` choice never downloads: it uses a network only when ``is_cached`` says its weights
  are on disk, and falls back to an embedded one otherwise.

Anything missing or unreadable is one ``WeightsNotFoundError`` naming the file and what else to do.
``.pth`` files are read with ``torch.load(weights_only=True)`` (tensors only, no code).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import WeightsNotFoundError

URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "inception_v3": "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
}


def cached_weights_path(kind: str) -> Path:
    """Where torchvision keeps the weights of ``kind`` (a key of ``URLS``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / URLS[kind].rsplit("/", 1)[-1]


def is_cached(kind: str) -> bool:
    """Whether the weights of ``kind`` are in the cache (what an ``auto`` choice may use)."""
    return cached_weights_path(kind).is_file()


def weights_file(kind: str, file: str | os.PathLike | None = None, *, needed_by: str, instead: str) -> Path:
    """The file holding ``kind``'s weights under the policy above: ``file``, else the cache, else
    downloaded into the cache. ``needed_by`` and ``instead`` (the alternatives) word the error."""
    path = Path(file) if file is not None else cached_weights_path(kind)
    if file is not None and not path.is_file():
        raise WeightsNotFoundError(f"{needed_by} needs {kind} weights: {path} does not exist; {instead}")
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(URLS[kind], str(path), progress=True)
        except Exception as exc:  # any network or disk failure
            raise WeightsNotFoundError(
                f"{needed_by} needs {kind} weights: not in the cache and the download failed "
                f"({_first_line(exc)}); put torchvision's {path.name} at {path} (or set TORCH_HOME), "
                f"{instead}") from None
    return path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, or from a ``.pth`` with ``weights_only=True`` (a
    restricted loader that refuses pickled code; torchvision publishes ``.pth``)."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any failure to read is the same error for the user)
        raise WeightsNotFoundError(f"cannot read weights from {path} ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc).strip() else ''}"


def load_weights(kind: str, file: str | os.PathLike | None = None, *, needed_by: str, instead: str) -> dict:
    """The state dict of ``kind`` (``weights_file``, then ``read_state_dict``)."""
    return read_state_dict(weights_file(kind, file, needed_by=needed_by, instead=instead))
