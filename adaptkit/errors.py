"""One exception hierarchy: everything adaptkit raises on bad input derives from AdaptkitError.

A message names a setting through :func:`option`, as the Python API calls it (``ema_decay``,
``class_id``): ``str(error)`` shows that name, and the command line shows the same mark as its
flag (``--ema-decay``, ``--class``) through :func:`render_options`.
"""
from __future__ import annotations

import re
import shlex
from typing import Callable

_START, _VALUE, _END = "\x1e", "\x1f", "\x1d"
_MARK = re.compile(f"{_START}(\\w+)(?:{_VALUE}([^{_VALUE}{_END}]*){_VALUE}([^{_END}]*))?{_END}")
_NO_VALUE = object()


def option(name: str, value: object = _NO_VALUE) -> str:
    """Mark the setting ``name`` (a ``FitConfig`` field or a function's argument) in an error message,
    with the ``value`` given for it if any: ``str(error)`` shows ``name`` (``name=value!r``), the
    command line ``--flag`` (``--flag value``; a list's items each as the flag takes them; ``True``:
    the switch alone)."""
    if value is _NO_VALUE:
        return f"{_START}{name}{_END}"
    values = value if isinstance(value, (list, tuple)) else [] if value is True else [value]
    cli = " ".join(shlex.quote(str(v)) for v in values)
    return f"{_START}{name}{_VALUE}{name}={value!r}{_VALUE}{cli}{_END}"


def render_options(message: str, flag: Callable[[str], str] | None = None) -> str:
    """``message`` with its :func:`option` marks shown as the Python names, or, given ``flag`` (a
    setting's name → its command-line flag without dashes), as flags."""
    def show(match: re.Match) -> str:
        name, python, cli = match.groups()
        if flag is None:
            return python if python is not None else name
        return f"--{flag(name)}" + (f" {cli}" if cli else "")
    return _MARK.sub(show, message)


class AdaptkitError(Exception):
    """Base class of every error adaptkit raises on purpose (the CLI prints it as one line, its
    settings as flags)."""

    def __str__(self) -> str:
        return render_options(super().__str__())

    def cli_message(self, flag: Callable[[str], str]) -> str:
        """The message with its settings shown as the command-line flags ``flag`` names."""
        return render_options(super().__str__(), flag)


class PluginNotFoundError(AdaptkitError, LookupError):
    """No adapter or base is registered under the requested name."""


class PluginLoadError(AdaptkitError, ImportError):
    """A registered plugin failed to import."""


class BaseFactoryError(AdaptkitError):
    """A base's factory raised, or made something that is neither an adaptkit Base nor an nn.Module."""


class AdapterConfigError(AdaptkitError, ValueError):
    """An adapter option has an invalid value, or one the model requires is missing."""


class TargetSelectionError(AdaptkitError, ValueError):
    """The target selection is invalid or matches no layer."""


class AdapterNameError(AdaptkitError, ValueError):
    """An adapter name is already attached to the model, or is not attached."""


class NotMergeableError(AdaptkitError):
    """The adapter cannot be folded exactly into the base."""


class CheckpointError(AdaptkitError):
    """An adapter checkpoint is missing, corrupt, or incompatible."""


class InvalidCheckpointError(CheckpointError, ValueError):
    """A readable adapter config, adapter or latents file has a field that is missing, of the wrong
    type or shape, out of range, or not finite."""


class BaseMismatchError(CheckpointError):
    """An adapter checkpoint was made for a different base architecture."""


class OutputPathError(AdaptkitError, ValueError):
    """An output path would overwrite one of the command's inputs (a file of the run it reads), or
    lies under a file instead of a folder."""


class FolderLockedError(AdaptkitError):
    """Another adaptkit process is writing to the folder (fit, resume, pull or sample into a run)."""


class DiskFullError(AdaptkitError, OSError):
    """A file could not be written: the disk (or the user's quota) is full. Nothing half-written is kept."""


class FilePermissionError(AdaptkitError, PermissionError):
    """A file or folder could not be read or written: permission denied (or a read-only file system)."""


class CallContextError(AdaptkitError):
    """An adapter needed the root call's inputs (latent, labels) and could not find them."""


class InvalidValueError(AdaptkitError, ValueError):
    """An argument is outside its valid range (a count ≤ 0, a truncation ≤ 0, …)."""


class UnknownClassError(AdaptkitError, ValueError):
    """A class name or id the base does not have."""


class IncompatibleAdaptersError(AdaptkitError):
    """Two adapters cannot be combined (morphed): different bases, adapter types, targets or options."""


class HubError(AdaptkitError):
    """Talking to the Hugging Face Hub failed (server error, invalid repo id)."""


class HubNotFoundError(HubError, LookupError):
    """The Hub repo, or the revision in it, does not exist (or is not visible to this token)."""


class HubAuthError(HubError, PermissionError):
    """The Hub wants a token, rejected the token, or the token lacks the permission."""


class HubConnectionError(HubError, ConnectionError):
    """The Hub cannot be reached, or offline mode is on and the cache lacks the adapter."""


class UnsafeRepoError(HubError):
    """A Hub repo holds pickles or file names that escape its folder; adaptkit refuses it."""


class ConfigError(AdaptkitError, ValueError):
    """A training setting or config file is invalid."""


class DataError(AdaptkitError):
    """An image folder is missing, empty, unreadable, or holds unsafe images."""


class TrainingError(AdaptkitError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


class TrainingInterrupted(AdaptkitError):
    """Training was stopped by the user; a checkpoint to resume from was saved."""


class WeightsNotFoundError(AdaptkitError, FileNotFoundError):
    """Pretrained weights (Inception, AlexNet, an embedded network) are not available locally."""


class EvaluationError(AdaptkitError, ValueError):
    """The inputs of a metric are unusable (too few images, degenerate real features, …)."""
