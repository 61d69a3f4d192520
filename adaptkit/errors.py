"""One exception hierarchy: everything adaptkit raises on bad input derives from AdaptkitError."""
from __future__ import annotations


class AdaptkitError(Exception):
    """Base class of every error adaptkit raises on purpose (the CLI prints it as one line)."""


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
