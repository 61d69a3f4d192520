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
    AdapterConfigError,
    AdapterNameError,
    AdaptkitError,
    BaseMismatchError,
    CallContextError,
    CheckpointError,
    NotMergeableError,
    PluginLoadError,
    PluginNotFoundError,
    TargetSelectionError,
)
from .io.checkpoint import load_adapter, save_adapter

__all__ = [
    "Adapter",
    "AdapterConfig",
    "AdapterConfigError",
    "AdapterHandle",
    "AdapterNameError",
    "AdaptkitError",
    "BaseMismatchError",
    "CallContext",
    "CallContextError",
    "CallSpec",
    "CheckpointError",
    "LayerInfo",
    "NotMergeableError",
    "PluginLoadError",
    "PluginNotFoundError",
    "TargetSelectionError",
    "__version__",
    "attach_adapter",
    "attached_adapters",
    "list_adapters",
    "load_adapter",
    "save_adapter",
    "set_active_adapter",
]
