"""adaptkit: adapt a frozen, pretrained image generator with tiny adapters from a few images."""
__version__ = "0.1.0"

from .core import (
    Adapter,
    AdapterConfig,
    AdapterHandle,
    CallContext,
    CallSpec,
    LayerInfo,
    attach_adapter,
    attached_adapters,
    list_adapters,
    set_active_adapter,
)
from .errors import (
    AdapterNameError,
    AdaptkitError,
    BaseMismatchError,
    CallContextError,
    CheckpointError,
    ConfigError,
    DataError,
    InvalidValueError,
    NotMergeableError,
    PluginLoadError,
    PluginNotFoundError,
    TargetSelectionError,
    TrainingError,
    TrainingInterrupted,
    UnknownClassError,
)
from .data import load_image_folder
from .images import save_grid
from .io.checkpoint import load_adapter, save_adapter
from .sample import generate_images, interpolate_latents, sample_images
from .train import FitConfig, fit, resume_config

__all__ = [
    "Adapter",
    "AdapterConfig",
    "AdapterHandle",
    "AdapterNameError",
    "AdaptkitError",
    "BaseMismatchError",
    "CallContext",
    "CallContextError",
    "CallSpec",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "FitConfig",
    "InvalidValueError",
    "LayerInfo",
    "NotMergeableError",
    "PluginLoadError",
    "PluginNotFoundError",
    "TargetSelectionError",
    "TrainingError",
    "TrainingInterrupted",
    "UnknownClassError",
    "__version__",
    "attach_adapter",
    "attached_adapters",
    "fit",
    "generate_images",
    "interpolate_latents",
    "list_adapters",
    "load_image_folder",
    "load_adapter",
    "sample_images",
    "resume_config",
    "save_adapter",
    "save_grid",
    "set_active_adapter",
]
