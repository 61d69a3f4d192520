"""Attaching adapters to a frozen base through forward hooks, and taking them off again."""
from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..errors import AdapterNameError, AdaptkitError, NotMergeableError
from .adapter import Adapter, AdapterConfig, LayerInfo
from .context import CallContext, CallSpec
from .plugins import adapter_class
from .targets import Selector, infer_channels, select_targets

_MODEL_ATTRS = {
    "latent_dim": ("latent_dim", "z_dim", "dim_z", "nz"),
    "num_classes": ("num_classes", "n_classes", "n_classes_out"),
}


def _sniff(model: nn.Module, key: str) -> int | None:
    sources = (model, getattr(model, "config", None))
    for src in sources:
        for attr in _MODEL_ATTRS[key]:
            value = getattr(src, attr, None)
            if isinstance(value, int):
                return value
    return None


def resolve_call_spec(model: nn.Module, call: CallSpec | None) -> CallSpec:
    """``call`` with ``latent_dim``/``num_classes`` filled in from the model where missing."""
    spec = call or CallSpec()
    return CallSpec(
        latent=spec.latent,
        labels=spec.labels,
        latent_dim=spec.latent_dim if spec.latent_dim is not None else _sniff(model, "latent_dim"),
        num_classes=spec.num_classes if spec.num_classes is not None else _sniff(model, "num_classes"),
    )


@dataclass
class _ModelState:
    """Bookkeeping for one base model: its attached handles and its original grad flags."""

    handles: dict[str, "AdapterHandle"] = field(default_factory=dict)
    requires_grad: dict[str, bool] = field(default_factory=dict)


_STATES: "weakref.WeakKeyDictionary[nn.Module, _ModelState]" = weakref.WeakKeyDictionary()


def attached_adapters(model: nn.Module) -> dict[str, "AdapterHandle"]:
    """The handles attached to ``model``, by name."""
    state = _STATES.get(model)
    return dict(state.handles) if state else {}


def set_active_adapter(model: nn.Module, names: str | Sequence[str] | None) -> None:
    """Make ``names`` the active adapters of ``model`` (``None``: none, run the bare base)."""
    handles = attached_adapters(model)
    wanted = [names] if isinstance(names, str) else list(names or [])
    missing = [n for n in wanted if n not in handles]
    if missing:
        raise AdapterNameError(
            f"no adapter named {', '.join(map(repr, missing))} on this model "
            f"(attached: {', '.join(map(repr, handles)) or 'none'})"
        )
    for name, handle in handles.items():
        handle.active = name in wanted


def _module_key(path: str) -> str:
    return path.replace(".", "/")


class AdapterHandle(nn.Module):
    """The adapters attached to one base model under one name.

    An ``nn.Module`` holding only adapter parameters (``parameters()``, ``state_dict()``): one
    adapter per target under ``adapters``, and the adapter class's ``shared_state`` (if any) under
    ``shared``. The base is referenced, never registered as a sub-module, so its own
    ``state_dict()`` is unchanged.
    """

    def __init__(
        self,
        model: nn.Module,
        adapter_cls: type[Adapter],
        config: AdapterConfig,
        targets: list[str],
        name: str,
        call: CallSpec,
        shared: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self._base = [model]  # a plain list: referenced, never registered as a sub-module
        self.adapter_cls = adapter_cls
        self.config = config
        self.name = name
        self.call_spec = call
        self.active = True
        self.targets: list[str] = list(targets)
        self.adapters = nn.ModuleDict()
        self.shared = shared
        self._hooks: list[RemovableHandle] = []
        self._contexts: list[CallContext] = []
        self._merged: dict[str, dict[str, torch.Tensor]] = {}
        self._disabled = 0
        self._attached = False
        self.metadata: dict[str, Any] = {}

    # --- the base -----------------------------------------------------------------------
    @property
    def base(self) -> nn.Module:
        return self._base[0]

    @property
    def attached(self) -> bool:
        return self._attached

    def adapter_for(self, path: str) -> Adapter:
        return self.adapters[_module_key(path)]  # type: ignore[return-value]

    def layers(self) -> Iterator[tuple[str, nn.Module, Adapter]]:
        """(path, base layer, adapter) for every target."""
        modules = dict(self.base.named_modules())
        for path in self.targets:
            yield path, modules[path], self.adapter_for(path)

    # --- hooks ---------------------------------------------------------------------------
    def _runs(self) -> bool:
        return self.active and not self._disabled

    def _install(self) -> None:
        model = self.base
        if self.adapter_cls.uses_context or _overrides(self.adapter_cls, "prepare_call"):
            self._hooks.append(model.register_forward_pre_hook(self._root_pre_hook, with_kwargs=True))
            self._hooks.append(model.register_forward_hook(self._root_post_hook, always_call=True))
        for path, layer, adapter in self.layers():
            self._hooks.append(
                layer.register_forward_hook(self._layer_hook(adapter.transform), with_kwargs=True)
            )
            for sub, fn in adapter.sublayer_hooks(layer).items():
                sublayer = layer.get_submodule(sub)
                self._hooks.append(sublayer.register_forward_hook(self._layer_hook(fn), with_kwargs=True))

    def _layer_hook(self, fn):
        contexts = self._contexts

        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            if not self._runs():
                return None
            return fn(module, args, kwargs, output, contexts[-1] if contexts else None)

        return hook

    def _root_pre_hook(self, module: nn.Module, args: tuple, kwargs: dict):
        ctx = CallContext.capture(self.call_spec, args, kwargs)
        self._contexts.append(ctx)
        if not self._runs():
            return None
        self.adapter_cls.prepare_call(list(self.adapters.values()), self.config, ctx)  # type: ignore[arg-type]
        return ctx.args, ctx.kwargs

    def _root_post_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self._contexts:
            self._contexts.pop()

    # --- the public handle API ---------------------------------------------------------------
    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_counts(self) -> dict[str, int]:
        """Adapter parameters per target layer."""
        return {path: sum(p.numel() for p in a.parameters()) for path, _, a in self.layers()}

    def regularization(self) -> torch.Tensor:
        """The sum of every adapter's own loss term."""
        terms = [a.regularization() for a in self.adapters.values()]  # type: ignore[union-attr]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def regularization_terms(self) -> dict[str, torch.Tensor]:
        """Every adapter's ``regularization_terms``, summed by name."""
        totals: dict[str, torch.Tensor] = {}
        for adapter in self.adapters.values():
            for name, value in adapter.regularization_terms().items():  # type: ignore[operator]
                totals[name] = totals[name] + value if name in totals else value
        return totals

    @property
    def new_classes(self) -> int:
        """Class ids this adapter adds after the base's (0 for most adapters)."""
        return self.adapter_cls.new_classes(self.config)

    # --- the compact inference form ------------------------------------------------------------
    @property
    def bakeable(self) -> bool:
        """Whether the adapter has a more compact inference form it is not yet in."""
        return self.adapter_cls.baked_config(self.config) is not None

    def baked_state(self) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
        """(config, state_dict) of the baked form, computed without changing this handle; the
        current ones if there is nothing to bake."""
        config = self.adapter_cls.baked_config(self.config)
        if config is None:
            return self.config, self.state_dict()
        tensors = {
            f"adapters.{key}.{name}": value.detach().clone()
            for key, adapter in self.adapters.items()
            for name, value in adapter.baked_state_dict().items()  # type: ignore[operator]
        }
        if self.shared is not None:
            tensors.update({f"shared.{k}": v.detach().clone() for k, v in self.shared.state_dict().items()})
        return config, tensors

    def bake(self) -> None:
        """Replace every adapter by its baked form in place (same outputs up to float rounding;
        no-op if there is nothing to bake). The training-time parameters are gone afterwards."""
        if not self.bakeable:
            return
        if self._merged:
            raise AdaptkitError(f"unmerge {self.name!r} before baking it")
        config, tensors = self.baked_state()
        baked = nn.ModuleDict()
        for path, layer, old in self.layers():
            key = _module_key(path)
            new = self.adapter_cls(layer, old.info, config)
            prefix = f"adapters.{key}."
            new.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            ref = next(iter(old.parameters()), None)
            baked[key] = new.to(ref.device) if ref is not None else new
        installed = bool(self._hooks)
        self._uninstall()
        self.adapters, self.config = baked, config
        if installed:
            self._install()

    @contextlib.contextmanager
    def enabled(self, on: bool = True) -> Iterator["AdapterHandle"]:
        """``with handle.enabled(False):`` runs the bare base."""
        if on:
            yield self
            return
        self._disabled += 1
        try:
            yield self
        finally:
            self._disabled -= 1

    def activate(self) -> "AdapterHandle":
        """Make this the only active adapter of its base."""
        set_active_adapter(self.base, self.name)
        return self

    def merge(self) -> None:
        """Fold every adapter into the base exactly and remove the hooks, so the merged model runs
        at the base's own speed. ``unmerge`` undoes it. All targets are checked first: if one
        cannot be merged, nothing is changed.
        """
        if self._merged:
            return
        for path, layer, adapter in self.layers():
            try:
                adapter.check_mergeable(layer)
            except NotMergeableError as exc:
                raise NotMergeableError(f"cannot merge {self.name!r} at {path}: {exc}") from None
        with torch.no_grad():
            for path, layer, adapter in self.layers():
                self._merged[path] = {k: v.detach().clone() for k, v in layer.state_dict().items()}
                adapter.merge(layer)
        self._uninstall()

    def _restore_merged(self) -> None:
        modules = dict(self.base.named_modules())
        with torch.no_grad():
            for path, saved in self._merged.items():
                for key, value in modules[path].state_dict(keep_vars=True).items():
                    value.copy_(saved[key])
        self._merged.clear()

    def unmerge(self) -> None:
        """Restore the base tensors that ``merge`` changed, bit for bit, and re-attach the hooks."""
        if not self._merged:
            return
        self._restore_merged()
        self._install()

    @property
    def merged(self) -> bool:
        return bool(self._merged)

    def _uninstall(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()

    def detach(self) -> None:
        """Remove every hook and restore the base exactly as it was before attaching."""
        if not self._attached:
            return
        self._restore_merged()
        self._uninstall()
        self._attached = False
        model = self.base
        state = _STATES.get(model)
        if state is None:
            return
        state.handles.pop(self.name, None)
        if not state.handles:
            for pname, p in model.named_parameters():
                if pname in state.requires_grad:
                    p.requires_grad_(state.requires_grad[pname])
            del _STATES[model]

    def extra_repr(self) -> str:
        return f"adapter={self.adapter_cls.name!r}, name={self.name!r}, targets={len(self.targets)}"

    # state_dict/train/eval only concern adapter parameters; the base keeps its own mode.


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method).__func__ is not getattr(Adapter, method).__func__


def build_config(adapter_cls: type[Adapter], config: dict[str, Any]) -> AdapterConfig:
    return adapter_cls.Config.from_dict(config, owner=f"the {adapter_cls.name} adapter" if adapter_cls.name else None)


def _checked(model: nn.Module, cls: type[Adapter], targets: Selector, exclude: Selector, call: CallSpec | None,
             config: dict[str, Any]) -> tuple[AdapterConfig, CallSpec, list[str]]:
    """The adapter's config, the call spec and the target paths, every one checked; the model untouched."""
    cfg = build_config(cls, config)
    if not isinstance(model, nn.Module):
        raise AdaptkitError(f"expected a torch.nn.Module, got {type(model).__name__}")
    spec = resolve_call_spec(model, call)
    paths = select_targets(model, cls.default_targets(model, cfg) if targets is None else [], targets, exclude)
    modules = dict(model.named_modules())
    for path in paths:
        cls.check_target(path, modules[path], cfg)
    return cfg, spec, paths


def check_attachment(
    model: nn.Module,
    adapter: str | type[Adapter],
    *,
    targets: Selector = None,
    exclude: Selector = None,
    call: CallSpec | None = None,
    **config: Any,
) -> list[str]:
    """Check what :func:`attach_adapter` would check of the same arguments (the options, the call
    spec, the targets) without touching ``model``; returns the target layers' paths."""
    return _checked(model, adapter_class(adapter), targets, exclude, call, config)[2]


def attach_adapter(
    model: nn.Module,
    adapter: str | type[Adapter],
    *,
    targets: Selector = None,
    exclude: Selector = None,
    name: str = "default",
    call: CallSpec | None = None,
    **config: Any,
) -> AdapterHandle:
    """Attach an adapter to every target layer of ``model`` and freeze the base.

    ``adapter``: a registered name (see ``adaptkit adapters``) or an ``Adapter`` subclass.
    ``targets``/``exclude``: see :func:`select_targets`. ``name``: several named adapters may share
    one model; the newest becomes the only active one (``set_active_adapter`` switches).
    ``call``: where the latent and labels are in the model's forward arguments. ``config``: the
    adapter's options. Everything is validated before the model is touched.
    """
    cls = adapter_class(adapter)
    cfg, spec, paths = _checked(model, cls, targets, exclude, call, config)
    state = _STATES.get(model)
    if state is not None and name in state.handles:
        raise AdapterNameError(
            f"an adapter named {name!r} is already attached to this model; "
            "pass a different name= or detach it first"
        )
    modules = dict(model.named_modules())

    shared = cls.shared_state(model, spec, cfg)
    if shared is not None and not isinstance(shared, nn.Module):
        raise AdaptkitError(f"{cls.__name__}.shared_state returned {type(shared).__name__}, not an nn.Module or None")
    handle = AdapterHandle(model, cls, cfg, paths, name, spec, shared)
    ref = next(iter(model.parameters()), None)
    for i, path in enumerate(paths):
        info = LayerInfo(
            path=path,
            channels=infer_channels(modules[path]),
            index=i,
            num_targets=len(paths),
            latent_dim=spec.latent_dim,
            num_classes=spec.num_classes,
            model=model,
            shared=shared,
        )
        handle.adapters[_module_key(path)] = cls(modules[path], info, cfg)
    if ref is not None:
        handle.to(device=ref.device)

    # Validation is over: from here on the model is changed.
    if state is None:
        state = _STATES.setdefault(model, _ModelState())
        state.requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for other in state.handles.values():
        other.active = False
    state.handles[name] = handle
    handle._install()
    handle._attached = True
    return handle
