"""The adapter registry: plugins from the ``adaptkit.adapters`` entry-point group."""
from __future__ import annotations

import functools
import importlib.metadata as metadata

from ..errors import PluginLoadError
from .adapter import Adapter
from .registry import PluginInfo, Registry

ADAPTERS = Registry("adaptkit.adapters", "adapter")


def _check_adapter(obj: object) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise PluginLoadError(f"entry point does not name an adaptkit.Adapter subclass (got {obj!r})")


def adapter_class(adapter: str | type[Adapter]) -> type[Adapter]:
    """Resolve a registered adapter name (or pass an ``Adapter`` subclass through)."""
    if isinstance(adapter, type) and issubclass(adapter, Adapter):
        return adapter
    if not isinstance(adapter, str):
        raise PluginLoadError(f"adapter must be a registered name or an Adapter subclass, got {adapter!r}")
    cls = ADAPTERS.get(adapter)
    try:
        _check_adapter(cls)
    except PluginLoadError as exc:
        raise PluginLoadError(f"adapter plugin {adapter!r}: {exc}") from None
    return cls


def list_adapters() -> list[PluginInfo]:
    """Every discovered adapter plugin, its distribution and version, and any load error."""
    return ADAPTERS.info(check=_check_adapter)


@functools.lru_cache(maxsize=None)
def _distributions_of(top_level_module: str) -> tuple[str, ...]:
    # packages_distributions() scans every installed distribution: slow, so once per module name.
    return tuple(metadata.packages_distributions().get(top_level_module, []))


def adapter_distribution(cls: type[Adapter]) -> tuple[str | None, str | None]:
    """The installed distribution (name, version) that provides an adapter class, if any."""
    for dist in _distributions_of(cls.__module__.split(".")[0]):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None, None
