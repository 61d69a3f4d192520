"""adaptkit's hook system: the plugin contract, target selection, attaching and detaching.

A plugin imports only this module: it exports the contract (``Adapter``, ``AdapterConfig``,
``LayerInfo``, ``CallContext``, ``CallSpec``), the target helpers, and every error a plugin may
raise (see ``docs/plugins.md``).
"""
from ..errors import AdapterConfigError, AdaptkitError, CallContextError, NotMergeableError, TargetSelectionError
from .adapter import Adapter, AdapterConfig, LayerInfo
from .context import CallContext, CallSpec
from .handle import AdapterHandle, attach_adapter, attached_adapters, set_active_adapter
from .plugins import ADAPTERS, adapter_class, list_adapters
from .targets import hidden_norm_or_conv_layers, is_norm_layer, norm_layers, output_layers, select_targets

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterConfig",
    "AdapterConfigError",
    "AdapterHandle",
    "AdaptkitError",
    "CallContext",
    "CallContextError",
    "CallSpec",
    "LayerInfo",
    "NotMergeableError",
    "TargetSelectionError",
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
