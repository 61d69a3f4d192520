"""The plugin contract: one Adapter instance per target layer, configured by a dataclass."""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..errors import AdapterConfigError, NotMergeableError
from .context import CallContext, CallSpec

SublayerHook = Callable[[nn.Module, tuple, dict, Any, "CallContext | None"], Any]


@dataclass
class AdapterConfig:
    """Base class of adapter configs: a dataclass whose fields round-trip through JSON."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], owner: str | None = None) -> "AdapterConfig":
        """The config of ``data``; an ``AdapterConfigError`` for an unknown option or a value not of
        its field's type (a number for ``float``, ``true``/``false`` for ``bool``, …), naming
        ``owner`` (the adapter) and the option."""
        owner = owner or cls.__qualname__
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise AdapterConfigError(
                f"unknown option(s) {', '.join(unknown)} for {owner} "
                f"(valid: {', '.join(sorted(names)) or 'none'})"
            )
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation this Python cannot evaluate: the plugin checks its values
            hints = {}
        for name, value in data.items():
            if name in hints and _matches(value, hints[name]) is False:
                raise AdapterConfigError(f"option {name} of {owner} must be {_describe(hints[name])}, not {value!r}")
        return cls(**data)


def _matches(value: Any, hint: Any) -> bool | None:
    """Whether a JSON-like ``value`` fits the annotation ``hint`` (None: an annotation not understood)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        found = [_matches(value, a) for a in args]
        return True if True in found else (None if None in found else False)
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and origin is list else None
        return None if item is None else all(_matches(v, item) is not False for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in args
    return None


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


def _describe(hint: Any) -> str:
    """``a number``, ``a string or a list of an integer``, … for an error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s" if args else "a list"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


@dataclass(frozen=True)
class LayerInfo:
    """What an adapter is told about its target layer and the model around it.

    ``model`` is the whole base, for adapters whose start depends on layers outside their target
    (e.g. a class embedding shared by every conditional BN); read it, never change it. ``shared``
    is the handle's shared state (``Adapter.shared_state``), the same module for every target.
    """

    path: str
    channels: int | None
    index: int
    num_targets: int
    latent_dim: int | None = None
    num_classes: int | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    shared: nn.Module | None = field(default=None, repr=False, compare=False)


class Adapter(nn.Module):
    """Base class of adapter plugins; the whole contract is described in ``docs/plugins.md``.

    A plugin subclasses this, sets ``name`` and ``Config``, and implements ``transform`` (called
    from the target layer's forward hook with the layer's inputs and output and the root call's
    context). Every other hook has a default that does nothing (or refuses, for ``merge``).
    """

    name: ClassVar[str] = ""
    """The registry name, recorded in saved checkpoints."""
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    """The options: an ``AdapterConfig`` dataclass (``attach_adapter(..., **options)``)."""
    uses_context: ClassVar[bool] = False
    """True if ``transform`` reads the root call's latent or labels (``ctx``)."""
    recommended_lr: ClassVar[dict[str, float]] = {}
    """Adam learning rates the adapter trains well with, by objective name (``fit`` uses them
    when no adapter rate is given)."""

    def __init__(self, layer: nn.Module, info: LayerInfo, config: AdapterConfig) -> None:
        super().__init__()
        self.info = info
        self.config = config

    @classmethod
    def default_targets(cls, model: nn.Module, config: AdapterConfig) -> list[str]:
        raise NotImplementedError(f"{cls.__name__} declares no default targets; pass targets=")

    @classmethod
    def base_options(cls, model: nn.Module, layer_roles: dict[str, str]) -> dict[str, Any]:
        """``attach_adapter`` options this adapter recommends for a base that names some of its
        layers by role (``Base.layer_roles``, e.g. ``{"latent_projection": "generator.gen_z"}``);
        callers such as ``fit`` put the user's own options over them."""
        return {}

    @classmethod
    def shared_state(cls, model: nn.Module, call: CallSpec, config: AdapterConfig) -> nn.Module | None:
        """State shared by the adapters of one handle (e.g. one class embedding for every layer), or
        ``None``. Built once per attach, before the adapters; each reaches it as ``info.shared``,
        and it is saved with the handle (keys ``shared.…``). ``call`` has the model's
        ``latent_dim``/``num_classes`` filled in where known."""
        return None

    @classmethod
    def new_classes(cls, config: AdapterConfig) -> int:
        """How many class ids the adapter adds after the base's N (they become N, N+1, …); the one
        place callers learn whether an adapter adds classes."""
        return 0

    @classmethod
    def request_new_classes(cls, options: dict[str, Any], count: int) -> dict[str, Any]:
        """``options`` completed so that the adapter adds ``count`` classes where they leave the
        number open (``fit`` with class folders the base lacks); an adapter that adds no classes
        returns them unchanged. The caller checks the result with ``new_classes``."""
        return options

    @classmethod
    def baked_config(cls, config: AdapterConfig) -> AdapterConfig | None:
        """The config of the compact inference form, or ``None`` if there is none or ``config`` is it.

        An adapter built from the returned config and loaded with ``baked_state_dict()`` must give
        the same outputs (up to float rounding).
        """
        return None

    def baked_state_dict(self) -> dict[str, torch.Tensor]:
        """This adapter's tensors in the form ``baked_config`` describes (keys of its state_dict)."""
        raise NotImplementedError(f"the {self.name!r} adapter has no baked form")

    @classmethod
    def check_target(cls, path: str, layer: nn.Module, config: AdapterConfig) -> None:
        """Raise ``TargetSelectionError`` if ``layer`` cannot carry this adapter."""

    @classmethod
    def prepare_call(cls, adapters: list["Adapter"], config: AdapterConfig, ctx: CallContext) -> None:
        """Inspect or rewrite the root call (``ctx``) once, before the base runs."""

    def transform(
        self, layer: nn.Module, args: tuple, kwargs: dict, output: Any, ctx: CallContext | None
    ) -> Any:
        """Return the adapted output of ``layer``."""
        raise NotImplementedError

    def sublayer_hooks(self, layer: nn.Module) -> dict[str, SublayerHook]:
        """Map sub-module names (relative to the target) to output transforms."""
        return {}

    def regularization(self) -> torch.Tensor:
        """The adapter's own loss term (zero by default)."""
        p = next(self.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else None)

    def regularization_terms(self) -> dict[str, torch.Tensor]:
        """The unweighted parts of ``regularization`` by name, logged separately by ``fit`` (none by
        default)."""
        return {}

    def check_mergeable(self, layer: nn.Module) -> None:
        """Raise ``NotMergeableError`` (saying why) if ``merge`` would not be exact."""
        raise NotMergeableError(f"the {self.name!r} adapter cannot be folded into the base")

    def merge(self, layer: nn.Module) -> None:
        """Fold this adapter into ``layer``'s parameters in place (under ``torch.no_grad``)."""
        self.check_mergeable(layer)
