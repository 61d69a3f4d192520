"""What a generator call looks like (CallSpec) and what adapters see of one call (CallContext)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

ArgRef = int | str | None


@dataclass(frozen=True)
class CallSpec:
    """Where a generator's latent and class labels sit in its ``forward`` arguments.

    ``latent``/``labels``: a positional index, a keyword name, ``None`` (absent) or ``"auto"``
    (latent = the first floating tensor, labels = the first integer tensor). ``latent_dim`` and
    ``num_classes`` size adapters that generate weights from the conditioning; they are inferred
    from common model attributes when not given.
    """

    latent: ArgRef = "auto"
    labels: ArgRef = "auto"
    latent_dim: int | None = None
    num_classes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CallSpec":
        return cls(**data)

    def locate(self, args: tuple, kwargs: dict) -> tuple[ArgRef, ArgRef]:
        """Resolve ``latent``/``labels`` to concrete positions for this call."""
        return (
            _resolve(self.latent, args, kwargs, torch.is_floating_point),
            _resolve(self.labels, args, kwargs, _is_integer),
        )


def _is_integer(t: torch.Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


def _resolve(ref: ArgRef, args: tuple, kwargs: dict, want) -> ArgRef:
    if ref != "auto":
        return ref
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and want(a):
            return i
    for k, a in kwargs.items():
        if isinstance(a, torch.Tensor) and want(a):
            return k
    return None


def _get(ref: ArgRef, args: tuple, kwargs: dict) -> Any:
    if ref is None:
        return None
    if isinstance(ref, int):
        return args[ref] if ref < len(args) else None
    return kwargs.get(ref)


@dataclass
class CallContext:
    """The root call's inputs, captured once per forward by the handle's root pre-hook.

    Adapters read ``latent`` and ``labels``; an adapter's ``prepare_call`` may replace the labels
    the base sees (``set_base_labels``) while ``labels`` keeps the caller's originals. ``state`` is
    per-call scratch space shared by the adapters of one handle.
    """

    args: tuple
    kwargs: dict
    latent: torch.Tensor | None
    labels: torch.Tensor | None
    label_ref: ArgRef = None
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def capture(cls, spec: CallSpec, args: tuple, kwargs: dict) -> "CallContext":
        latent_ref, label_ref = spec.locate(args, kwargs)
        return cls(
            args=args,
            kwargs=dict(kwargs),
            latent=_get(latent_ref, args, kwargs),
            labels=_get(label_ref, args, kwargs),
            label_ref=label_ref,
        )

    def set_base_labels(self, labels: torch.Tensor) -> None:
        """Make the base see ``labels`` instead of the caller's (``self.labels`` is kept)."""
        ref = self.label_ref
        if ref is None:
            raise ValueError("this call has no labels to replace")
        if isinstance(ref, int):
            self.args = self.args[:ref] + (labels,) + self.args[ref + 1 :]
        else:
            self.kwargs[ref] = labels
