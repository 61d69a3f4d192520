"""Building a base from a spec, the one way: a name from the ``adaptkit.bases`` entry points, or
``python:package.module:factory``."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.context import CallSpec
from ..core.handle import resolve_call_spec
from ..core.registry import PluginInfo, Registry
from ..errors import AdaptkitError, BaseFactoryError, option
from .base import Base, BaseSizes

BASES = Registry("adaptkit.bases", "base")
PREFIX = "python:"


def import_object(spec: str) -> Any:
    """Import ``package.module:attribute`` (the current directory is importable, as with python -m)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AdaptkitError(f"{spec!r} is not of the form package.module:factory")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AdaptkitError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AdaptkitError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _probe(generator: nn.Module, latent_dim: int, num_classes: int | None) -> torch.Tensor:
    device = next(iter(generator.parameters()), torch.empty(0)).device
    z = torch.zeros(1, latent_dim, device=device)
    with torch.no_grad():
        try:
            return generator(z) if num_classes is None else generator(z, torch.zeros(1, dtype=torch.long, device=device))
        except Exception as exc:
            raise AdaptkitError(
                f"calling {type(generator).__name__} with a latent of size {latent_dim}"
                f"{' and a class id' if num_classes is not None else ''} failed ({type(exc).__name__}: {exc}); "
                f"check {option('latent_dim')} / {option('num_classes')}"
            ) from None


def wrap_generator(
    spec: str,
    generator: nn.Module,
    *,
    latent_dim: int | None = None,
    num_classes: int | None = None,
) -> Base:
    """A ``Base`` for a plain generator module, its sizes inferred from attributes and one dry call."""
    call = resolve_call_spec(generator, CallSpec(latent_dim=latent_dim, num_classes=num_classes))
    if call.latent_dim is None:
        raise AdaptkitError(f"cannot infer the latent size of {spec}: pass {option('latent_dim')}")
    generator.eval()
    out = _probe(generator, call.latent_dim, call.num_classes)
    if out.dim() != 4 or out.shape[-1] != out.shape[-2]:
        raise AdaptkitError(f"{spec} returned shape {tuple(out.shape)}; expected square images (B, C, H, W)")
    return Base(
        id=spec,
        generator=generator,
        latent_dim=call.latent_dim,
        resolution=out.shape[-1],
        channels=out.shape[1],
        num_classes=call.num_classes,
        call=call,
    )


def _make(spec: str) -> Any:
    """What the factory ``spec`` names makes; its own failure becomes one ``BaseFactoryError``."""
    factory = import_object(spec[len(PREFIX):]) if spec.startswith(PREFIX) else BASES.get(spec)
    if not callable(factory) or isinstance(factory, nn.Module):  # the object itself, not a factory
        return factory
    try:
        return factory()
    except AdaptkitError:  # already one clear line (e.g. weights that cannot be found)
        raise
    except Exception as exc:
        detail = f": {exc}" if str(exc).strip() else ""
        raise BaseFactoryError(f"base {spec}: its factory raised {type(exc).__name__}{detail}") from exc


def load_base(
    spec: str,
    *,
    latent_dim: int | None = None,
    num_classes: int | None = None,
    device: torch.device | str | None = None,
) -> Base:
    """A registered base by name, or ``python:package.module:factory`` (returning a ``Base`` or a
    generator module): the one way every command and function builds a base from a spec.
    ``latent_dim``/``num_classes`` override what cannot be inferred."""
    made = _make(spec)
    if isinstance(made, nn.Module):
        made = wrap_generator(spec, made, latent_dim=latent_dim, num_classes=num_classes)
    if not isinstance(made, Base):
        raise BaseFactoryError(f"base {spec} gave {type(made).__name__}, not an adaptkit Base or nn.Module")
    if latent_dim is not None and latent_dim != made.latent_dim:
        raise AdaptkitError(f"base {spec} takes latents of size {made.latent_dim}, not {latent_dim}")
    made.generator.eval()
    for p in made.generator.parameters():
        p.requires_grad_(False)
    return made.to(device) if device is not None else made


def base_sizes(name: str) -> BaseSizes | None:
    """The sizes registered base ``name`` declares (without loading its weights), if it loads and
    declares them."""
    try:
        factory = BASES.get(name)
    except AdaptkitError:
        return None
    sizes = getattr(factory, "sizes", None)
    return sizes if isinstance(sizes, BaseSizes) else None


def base_hub_model(name: str) -> str | None:
    """The Hub model id registered base ``name`` declares for its weights (``declare_hub_model``), if any."""
    try:
        factory = BASES.get(name)
    except AdaptkitError:
        return None
    hub_model = getattr(factory, "hub_model", None)
    return hub_model if isinstance(hub_model, str) else None


def is_base_spec(spec: str) -> bool:
    """Whether ``load_base(spec)`` would look ``spec`` up: a registered name or a ``python:`` factory
    (without loading it)."""
    return spec.startswith(PREFIX) or spec in BASES.names()


def list_bases() -> list[PluginInfo]:
    """Every registered base, its distribution, and any load error."""
    return BASES.info()
