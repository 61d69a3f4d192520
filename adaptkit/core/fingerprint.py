"""A fingerprint of a base's architecture at the adapter's target layers."""
from __future__ import annotations

import hashlib
import json

from torch import nn

LayerSignature = list[list[str]]


def layer_signature(layer: nn.Module) -> LayerSignature:
    """[name, shape, dtype] of every parameter and buffer of one layer, sorted."""
    rows = [
        [name, "x".join(map(str, t.shape)), str(t.dtype).replace("torch.", "")]
        for name, t in (*layer.named_parameters(), *layer.named_buffers())
    ]
    return sorted(rows)


def base_signature(model: nn.Module, targets: list[str]) -> dict[str, LayerSignature]:
    """Signature of each target layer; a missing layer maps to ``None``."""
    modules = dict(model.named_modules())
    return {p: layer_signature(modules[p]) if p in modules else None for p in targets}  # type: ignore[misc]


def fingerprint(signature: dict[str, LayerSignature]) -> str:
    blob = json.dumps(signature, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def describe_differences(saved: dict[str, LayerSignature], current: dict[str, LayerSignature | None]) -> list[str]:
    """Human-readable differences between a saved and a current signature, one per layer."""
    out = []
    for path, want in saved.items():
        have = current.get(path)
        if have is None:
            out.append(f"{path}: missing from this model")
        elif have != want:
            diff = sorted({tuple(r) for r in want} ^ {tuple(r) for r in have})
            detail = "; ".join(f"{n} {s} {d}" for n, s, d in diff[:3])
            out.append(f"{path}: differs ({detail})")
    return out
