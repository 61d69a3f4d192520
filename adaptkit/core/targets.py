"""Choosing the layers an adapter attaches to."""
from __future__ import annotations

import re
from typing import Iterable, Sequence, Union

from torch import nn

from ..errors import TargetSelectionError

Selector = Union[str, type, Sequence[Union[str, type]], None]

_TORCH_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
_NORM_NAME = re.compile(r".*Norm(\dd)?$")
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def is_norm_layer(module: nn.Module) -> bool:
    """Torch normalization layers and conditional ones named like them (``ConditionalBatchNorm2d``,
    BigGAN's ``BigGANBatchNorm``)."""
    return isinstance(module, _TORCH_NORMS) or bool(_NORM_NAME.fullmatch(type(module).__name__))


def outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths nested inside another path of the list (a conditional BN's inner BatchNorm)."""
    kept: list[str] = []
    for p in paths:
        if not any(p.startswith(k + ".") for k in kept):
            kept.append(p)
    return kept


def norm_layers(model: nn.Module) -> list[str]:
    """Outermost normalization layers, in module definition order."""
    return outermost(n for n, m in model.named_modules() if n and is_norm_layer(m))


def conv_layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if n and isinstance(m, _CONVS)]


def output_layers(model: nn.Module) -> set[str]:
    """The generator's final layers, by module definition order: the last normalization layer and
    the last convolution. Default selections leave them alone (BSA adapts every hidden layer but
    the last)."""
    return {paths[-1] for paths in (norm_layers(model), conv_layers(model)) if paths}


def hidden_norm_or_conv_layers(model: nn.Module) -> list[str]:
    """Every normalization layer but the output one; conv layers if the model has no norms."""
    found = norm_layers(model) or conv_layers(model)
    out = output_layers(model)
    return [p for p in found if p not in out]


def _matches(selector: Selector, path: str, module: nn.Module) -> bool:
    if isinstance(selector, str):
        return re.fullmatch(selector, path) is not None
    if isinstance(selector, type):
        return isinstance(module, selector)
    return any(
        isinstance(module, s) if isinstance(s, type) else (path == s or path.endswith("." + s))
        for s in selector  # type: ignore[union-attr]
    )


def _check_selector(selector: Selector, what: str) -> None:
    if selector is None or isinstance(selector, type):
        return
    if isinstance(selector, str):
        try:
            re.compile(selector)
        except re.error as exc:
            raise TargetSelectionError(f"{what} {selector!r} is not a valid regular expression: {exc}")
        return
    if isinstance(selector, (list, tuple, set, frozenset)):
        bad = [s for s in selector if not isinstance(s, (str, type))]
        if not bad and selector:
            return
    raise TargetSelectionError(
        f"{what} must be a regex string, a module type, or a non-empty list of names/types; got {selector!r}"
    )


def explicit_names(selector: Selector) -> set[str]:
    if isinstance(selector, (list, tuple, set, frozenset)):
        return {s for s in selector if isinstance(s, str)}
    return set()


def select_targets(
    model: nn.Module, default: Sequence[str], targets: Selector = None, exclude: Selector = None
) -> list[str]:
    """Resolve a target selection to module paths, in module order.

    ``targets``: ``None`` (the adapter's ``default``), a regex (full match on the module path), a
    module type, or a list of names (exact or ``.suffix`` match, as PEFT's ``target_modules``)
    and/or types. The output layers are dropped unless a list names them explicitly.
    """
    _check_selector(targets, "targets")
    _check_selector(exclude, "exclude")
    modules = dict(model.named_modules())
    if targets is None:
        chosen = [p for p in default if p in modules]
    else:
        chosen = [p for p, m in modules.items() if p and _matches(targets, p, m)]
        named = explicit_names(targets)
        keep = {p for p in chosen if p in named or any(p.endswith("." + n) for n in named)}
        chosen = [p for p in chosen if p not in output_layers(model) or p in keep]
    if exclude is not None:
        chosen = [p for p in chosen if not _matches(exclude, p, modules[p])]
    if not chosen:
        sample = ", ".join(list(n for n in modules if n)[:8]) or "(the model has no sub-modules)"
        what = "the default targets" if targets is None else f"targets={targets!r}"
        extra = f" after exclude={exclude!r}" if exclude is not None else ""
        raise TargetSelectionError(
            f"{what}{extra} matched no layer of {type(model).__name__} (its layers include: {sample})"
        )
    return chosen


def infer_channels(module: nn.Module) -> int | None:
    """The feature-channel count of a layer's output, read from common attributes."""
    for m in (module, *module.modules()):
        for attr in ("num_features", "num_channels", "out_channels", "out_features", "embedding_dim"):
            value = getattr(m, attr, None)
            if isinstance(value, int):
                return value
        shape = getattr(m, "normalized_shape", None)
        if shape:
            return int(shape[-1] if len(shape) == 1 else shape[0])
    return None
