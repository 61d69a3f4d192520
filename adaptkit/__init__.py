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
    InvalidValueError,
    NotMergeableError,
    PluginLoadError,
    PluginNotFoundError,
    TargetSelectionError,
    UnknownClassError,
)
from .images import save_grid
from .io.checkpoint import load_adapter, save_adapter
from .sample import generate_images, interpolate_latents, sample_images

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
    "InvalidValueError",
    "LayerInfo",
    "NotMergeableError",
    "PluginLoadError",
    "PluginNotFoundError",
    "TargetSelectionError",
    "UnknownClassError",
    "__version__",
    "attach_adapter",
    "attached_adapters",
    "generate_images",
    "interpolate_latents",
    "list_adapters",
    "load_adapter",
    "sample_images",
    "save_adapter",
    "save_grid",
    "set_active_adapter",
]
