"""adaptkit: adapt a frozen, pretrained image generator with tiny adapters from a few images.

Importing the package is cheap: the errors load at once, everything else (torch included) on
first use of a name, so ``adaptkit --help`` and ``--version`` never load torch.
"""
from ._version import __version__

import importlib
from typing import Any

from .errors import (
    AdapterConfigError,
    AdapterNameError,
    AdaptkitError,
    BaseFactoryError,
    BaseMismatchError,
    CallContextError,
    CheckpointError,
    ConfigError,
    DataError,
    DiskFullError,
    EvaluationError,
    FilePermissionError,
    FolderLockedError,
    HubAuthError,
    HubConnectionError,
    HubError,
    HubNotFoundError,
    IncompatibleAdaptersError,
    InvalidCheckpointError,
    InvalidValueError,
    NotMergeableError,
    OutputPathError,
    PluginLoadError,
    PluginNotFoundError,
    TargetSelectionError,
    TrainingError,
    TrainingInterrupted,
    UnknownClassError,
    UnsafeRepoError,
    WeightsNotFoundError,
)

_LAZY = {  # public name -> the module that defines it, imported on first use (PEP 562)
    **dict.fromkeys([
        "Adapter", "AdapterConfig", "AdapterHandle", "CallContext", "CallSpec", "LayerInfo",
        "attach_adapter", "attached_adapters", "list_adapters", "set_active_adapter",
    ], ".core"),
    **dict.fromkeys(["run_demo", "write_demo_set"], ".demo"),
    **dict.fromkeys([
        "EvalReport", "FeatureExtractor", "evaluate", "frechet_distance", "kernel_distance", "kmmd",
        "load_feature_extractor", "mean_variance", "memorization",
    ], ".eval"),
    **dict.fromkeys(["save_grid"], ".images"),
    **dict.fromkeys(["save_adapter"], ".io.checkpoint"),
    **dict.fromkeys(["load_adapter"], ".io.loading"),
    **dict.fromkeys(["PushResult", "pull_adapter", "push_adapter"], ".io.hub"),
    **dict.fromkeys(["morph_images", "morph_runs"], ".morph"),
    **dict.fromkeys([
        "StripEnds", "generate_images", "interpolate_images", "interpolate_latents",
        "interpolate_run", "sample_images", "sample_learned_latents", "sample_run",
    ], ".sample"),
    **dict.fromkeys(["FitConfig", "fit", "resume_config"], ".train"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Adapter",
    "AdapterConfig",
    "AdapterConfigError",
    "AdapterHandle",
    "AdapterNameError",
    "AdaptkitError",
    "BaseFactoryError",
    "BaseMismatchError",
    "CallContext",
    "CallContextError",
    "CallSpec",
    "CheckpointError",
    "EvalReport",
    "EvaluationError",
    "FeatureExtractor",
    "HubAuthError",
    "HubConnectionError",
    "HubError",
    "HubNotFoundError",
    "IncompatibleAdaptersError",
    "ConfigError",
    "DataError",
    "DiskFullError",
    "FilePermissionError",
    "FolderLockedError",
    "FitConfig",
    "InvalidCheckpointError",
    "InvalidValueError",
    "LayerInfo",
    "NotMergeableError",
    "OutputPathError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PushResult",
    "StripEnds",
    "TargetSelectionError",
    "TrainingError",
    "TrainingInterrupted",
    "UnknownClassError",
    "UnsafeRepoError",
    "WeightsNotFoundError",
    "__version__",
    "attach_adapter",
    "attached_adapters",
    "fit",
    "evaluate",
    "frechet_distance",
    "generate_images",
    "interpolate_images",
    "interpolate_latents",
    "interpolate_run",
    "kernel_distance",
    "kmmd",
    "list_adapters",
    "load_adapter",
    "load_feature_extractor",
    "mean_variance",
    "memorization",
    "morph_images",
    "morph_runs",
    "pull_adapter",
    "push_adapter",
    "sample_images",
    "sample_learned_latents",
    "sample_run",
    "resume_config",
    "run_demo",
    "save_adapter",
    "save_grid",
    "set_active_adapter",
    "write_demo_set",
]
