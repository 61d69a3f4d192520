"""What adaptkit needs to know about a base generator: how to call it, its sizes, its extras."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..core.context import CallSpec
from ..core.plugins import adapter_class
from ..errors import InvalidValueError, UnknownClassError

GenerateFn = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
Truncation = float | str | None
"""A truncation threshold: a positive number, ``None`` or ``"none"`` (untruncated), or ``"base"``
(the base's own default, ``Base.truncation``)."""
BASE_TRUNCATION = "base"


def default_generate(generator: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return generator(z) if y is None else generator(z, y)


def truncated_normal(
    n: int, dim: int, threshold: float | None = 0.4, *, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """N(0, I) samples with every value beyond ±threshold redrawn (the papers' truncation trick)."""
    z = torch.randn(n, dim, generator=generator)
    if threshold is not None:
        if threshold <= 0:
            raise ValueError("truncation threshold must be positive")
        while (bad := z.abs() > threshold).any():
            z[bad] = torch.randn(int(bad.sum()), generator=generator)
    return z.to(device)


@dataclass(frozen=True)
class BaseSizes:
    """What a registered base produces, declared on its factory (``factory.sizes``) so that
    ``adaptkit bases`` can list it without loading weights."""

    resolution: int
    channels: int
    latent_dim: int
    num_classes: int | None = None


def declare_sizes(sizes: BaseSizes) -> Callable[[Callable[[], "Base"]], Callable[[], "Base"]]:
    """Decorate a base factory with the sizes of the base it returns."""

    def declare(factory: Callable[[], "Base"]) -> Callable[[], "Base"]:
        factory.sizes = sizes  # type: ignore[attr-defined]
        return factory

    return declare


def declare_hub_model(repo_id: str) -> Callable[[Callable[[], "Base"]], Callable[[], "Base"]]:
    """Decorate a base factory with the Hub model id of the same weights (``factory.hub_model``), which
    model cards of adapters for it name as their ``base_model``."""

    def declare(factory: Callable[[], "Base"]) -> Callable[[], "Base"]:
        factory.hub_model = repo_id  # type: ignore[attr-defined]
        return factory

    return declare


@dataclass
class Base:
    """A base generator and how to drive it.

    ``generate(generator, z, y)`` maps latents (and class ids, for conditional bases) to images in
    [-1, 1] of shape (B, channels, resolution, resolution). ``call`` tells the hook system where the
    latent and labels sit in the generator's own forward arguments. ``layer_roles`` names layers of
    the generator by role (e.g. ``{"latent_projection": "generator.gen_z"}``), from which each
    adapter recommends its options for this base (``adapter_options``; see ``docs/plugins.md``).
    ``truncation`` is the threshold its samples use unless told otherwise (the papers' 0.4 suits
    BigGAN; ``None`` for a generator never trained for truncation). ``info`` holds provenance
    (source, weights digest) for listings and run summaries.
    """

    id: str
    generator: nn.Module
    latent_dim: int
    resolution: int
    channels: int
    num_classes: int | None = None
    class_names: list[str] | None = None
    call: CallSpec = field(default_factory=CallSpec)
    generate_fn: GenerateFn = default_generate
    discriminator: nn.Module | None = None
    feature_network: nn.Module | None = None
    revision: str | None = None
    layer_roles: dict[str, str] = field(default_factory=dict)
    truncation: float | None = 0.4
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def device(self) -> torch.device:
        p = next(iter(self.generator.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional and y is None:
            raise ValueError(f"base {self.id} is class-conditional: pass class ids")
        return self.generate_fn(self.generator, z, y if self.conditional else None)

    def resolve_truncation(self, truncation: Truncation = BASE_TRUNCATION) -> float | None:
        """The threshold ``truncation`` stands for (see ``Truncation``); ``InvalidValueError`` when
        it is neither a positive number, ``none`` nor ``base``."""
        if truncation == BASE_TRUNCATION:
            return self.truncation
        if truncation is None or truncation == "none":
            return None
        try:
            value = float(truncation)
        except (TypeError, ValueError):
            value = float("nan")
        if not value > 0:
            raise InvalidValueError(f"truncation must be a positive number, 'none' or 'base', not {truncation!r}")
        return value

    def sample_latents(
        self, n: int, truncation: Truncation = BASE_TRUNCATION, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        threshold = self.resolve_truncation(truncation)
        return truncated_normal(n, self.latent_dim, threshold, generator=generator, device=self.device)

    def class_id(self, name_or_id: str | int) -> int:
        """A class id from its name (as recorded in ``class_names``) or its number."""
        if not self.conditional:
            raise UnknownClassError(f"base {self.id} is unconditional: it has no classes")
        if self.class_names and str(name_or_id) in self.class_names:
            return self.class_names.index(str(name_or_id))
        try:
            cid = int(name_or_id)
        except ValueError:
            names = self.class_names or []
            shown = ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")
            raise UnknownClassError(
                f"unknown class {name_or_id!r} (give an id 0–{self.num_classes - 1}"  # type: ignore[operator]
                f"{' or a name: ' + shown if names else ''})"
            ) from None
        if not 0 <= cid < self.num_classes:  # type: ignore[operator]
            raise UnknownClassError(f"class {cid} is out of range for base {self.id} ({self.num_classes} classes)")
        return cid

    def add_classes(self, count: int, names: list[str] | None = None) -> None:
        """Extend the class list by ``count`` classes an adapter added (ids N … N+count−1), named
        ``names`` (default: their ids); the base's own classes keep their names (default: ids)."""
        if self.num_classes is None:
            raise ValueError(f"base {self.id} is unconditional: it has no classes to add to")
        old = list(self.class_names or (str(i) for i in range(self.num_classes)))
        new = [str(n) for n in names] if names else [str(self.num_classes + i) for i in range(count)]
        if len(new) != count:
            raise ValueError(f"{len(new)} names for {count} new classes")
        clash = sorted(set(old) & set(new))
        if clash or len(set(new)) != count:
            raise ValueError(f"new class names must be unique and differ from the base's (repeated: {clash or new})")
        self.class_names = old + new
        self.num_classes += count

    def adapter_options(self, adapter: str | type) -> dict[str, Any]:
        """The ``attach_adapter`` options ``adapter`` recommends for this base (from its
        ``layer_roles``); callers such as ``fit`` put the user's own options over them."""
        return adapter_class(adapter).base_options(self.generator, dict(self.layer_roles))

    def to(self, device: torch.device | str) -> "Base":
        for m in (self.generator, self.discriminator, self.feature_network):
            if m is not None:
                m.to(device)
        return self
