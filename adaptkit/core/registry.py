"""Lazy, entry-point based registries (adapters, bases): name -> object, import on first use."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from ..errors import PluginLoadError, PluginNotFoundError


@dataclass(frozen=True)
class PluginInfo:
    """One discovered plugin: where it comes from, and whether it loads."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    error: str | None = None


class Registry:
    """Plugins of one entry-point group, discovered with importlib.metadata and loaded lazily.

    Objects can also be registered in-process with :meth:`register` (handy in notebooks and tests).
    A plugin that fails to import is reported by name with its error; the others keep working.
    """

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind
        self._local: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        found: dict[str, metadata.EntryPoint] = {}
        for ep in metadata.entry_points(group=self.group):
            found.setdefault(ep.name, ep)
        return found

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` under ``name`` in this process; usable as a decorator."""

        def add(target: Any) -> Any:
            self._local[name] = target
            self._loaded.pop(name, None)
            return target

        return add if obj is None else add(obj)

    def names(self) -> list[str]:
        """Every registered name, loadable or not, sorted."""
        return sorted(set(self._entry_points()) | set(self._local))

    def get(self, name: str) -> Any:
        """The object registered as ``name``; imports its module on first use."""
        if name in self._local:
            return self._local[name]
        if name in self._loaded:
            return self._loaded[name]
        eps = self._entry_points()
        if name not in eps:
            known = ", ".join(self.names()) or "none"
            raise PluginNotFoundError(f"unknown {self.kind} {name!r} (available: {known})")
        try:
            obj = eps[name].load()
        except Exception as exc:  # any import-time failure of a third-party plugin
            raise PluginLoadError(
                f"{self.kind} plugin {name!r} ({eps[name].value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = obj
        return obj

    def info(self, check: Callable[[Any], None] | None = None) -> list[PluginInfo]:
        """Describe every plugin, loading each one to report failures (``check`` may validate it)."""
        eps = self._entry_points()
        rows = []
        for name in self.names():
            ep = eps.get(name)
            dist = getattr(ep, "dist", None) if ep is not None else None
            error = None
            try:
                obj = self.get(name)
                if check is not None:
                    check(obj)
            except Exception as exc:
                error = str(exc)
            rows.append(
                PluginInfo(
                    name=name,
                    value=ep.value if ep is not None else "registered in-process",
                    distribution=dist.metadata["Name"] if dist is not None else None,
                    version=dist.version if dist is not None else None,
                    error=error,
                )
            )
        return rows
