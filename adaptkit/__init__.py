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
    EvaluationError,
    ImageFolderError,
    NotMergeableError,
    PluginLoadError,
    PluginNotFoundError,
    TargetSelectionError,
    WeightsNotFoundError,
)
from .eval import EvalReport, FeatureExtractor, evaluate, frechet_distance, kmmd, load_feature_extractor, mean_variance
from .io.checkpoint import load_adapter, save_adapter
from .io.images import read_image_folder

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
    "EvalReport",
    "EvaluationError",
    "FeatureExtractor",
    "ImageFolderError",
    "LayerInfo",
    "NotMergeableError",
    "PluginLoadError",
    "PluginNotFoundError",
    "TargetSelectionError",
    "WeightsNotFoundError",
    "__version__",
    "attach_adapter",
    "attached_adapters",
    "evaluate",
    "frechet_distance",
    "kmmd",
    "list_adapters",
    "load_adapter",
    "load_feature_extractor",
    "mean_variance",
    "read_image_folder",
    "save_adapter",
    "set_active_adapter",
]
