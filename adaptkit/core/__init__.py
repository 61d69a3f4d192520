"""adaptkit's hook system: the plugin contract, target selection, attaching and detaching."""
from .adapter import Adapter, AdapterConfig, LayerInfo
from .context import CallContext, CallSpec
from .handle import AdapterHandle, attach_adapter, attached_adapters, set_active_adapter
from .plugins import ADAPTERS, adapter_class, list_adapters
from .targets import hidden_norm_or_conv_layers, is_norm_layer, norm_layers, output_layers, select_targets

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterConfig",
    "AdapterHandle",
    "CallContext",
    "CallSpec",
    "LayerInfo",
    "adapter_class",
    "attach_adapter",
    "attached_adapters",
    "hidden_norm_or_conv_layers",
    "is_norm_layer",
    "list_adapters",
    "norm_layers",
    "output_layers",
    "select_targets",
    "set_active_adapter",
]
