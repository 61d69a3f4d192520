"""A minimal adaptkit adapter plugin: a learned per-channel shift h' = h + β."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adaptkit.core import Adapter, AdapterConfig, LayerInfo, NotMergeableError, hidden_norm_or_conv_layers


@dataclass
class ShiftConfig(AdapterConfig):
    """reg_weight: weight of the L2 penalty mean(β²)."""

    reg_weight: float = 0.0


class ShiftAdapter(Adapter):
    """Adds a learned bias to every channel of the target layer's output (zero at start)."""

    name = "shift"
    Config = ShiftConfig

    def __init__(self, layer: nn.Module, info: LayerInfo, config: ShiftConfig) -> None:
        super().__init__(layer, info, config)
        self.beta = nn.Parameter(torch.zeros(info.channels))

    @classmethod
    def default_targets(cls, model: nn.Module, config: ShiftConfig) -> list[str]:
        return hidden_norm_or_conv_layers(model)

    def transform(self, layer, args, kwargs, output, ctx):
        shape = (-1,) + (1,) * (output.dim() - 2)
        return output + self.beta.to(output.dtype).view(shape)

    def regularization(self) -> torch.Tensor:
        return self.config.reg_weight * (self.beta**2).mean()

    def check_mergeable(self, layer: nn.Module) -> None:
        if not isinstance(getattr(layer, "bias", None), nn.Parameter):
            raise NotMergeableError(f"{type(layer).__name__} has no bias to fold the shift into")

    def merge(self, layer: nn.Module) -> None:
        layer.bias.add_(self.beta.to(layer.bias.dtype))
