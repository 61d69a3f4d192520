"""Batch Statistics Adaptation (Noguchi & Harada, ICCV 2019): channel-wise FiLM h' = γ ⊙ h + β
on every hidden normalization layer of a frozen generator."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptkit.core import (
    Adapter,
    AdapterConfig,
    LayerInfo,
    NotMergeableError,
    TargetSelectionError,
    hidden_norm_or_conv_layers,
    is_norm_layer,
    output_layers,
)


@dataclass
class FilmConfig(AdapterConfig):
    """Options of the ``bsa`` adapter.

    reg_weight: λ of the regularizer λ·Σ_layers [mean((γ−1)²) + mean(β²)] (the paper's λ_γβ ≤ 0.02).
    adapt_first_linear: also adapt the output of the first ``nn.Linear`` (the latent projection in
        SNGAN/BigGAN-style generators; module definition order) as the official SNGAN code does.
    train_conditional: also learn deltas to the conditional-BN parameters inside each target (its
        class-embedding tables or the linear layers computing γ/β, as the official BigGAN path
        does); the base's own tensors are never written. Non-normalization targets (the first
        linear layer) keep plain γ/β; a normalization target without such parameters is an error.
    """

    reg_weight: float = 0.02
    adapt_first_linear: bool = False
    train_conditional: bool = False


def _channel_last(layer: nn.Module) -> bool:
    """Linear outputs and 1-D LayerNorms carry channels last; everything else in dim 1."""
    return isinstance(layer, nn.Linear) or (isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1)


def _conditional_producers(layer: nn.Module) -> dict[str, nn.Module]:
    """Embedding/Linear sub-modules that compute a conditional norm layer's γ/β."""
    return {n: m for n, m in layer.named_modules() if n and isinstance(m, (nn.Embedding, nn.Linear))}


def _key(sub: str, param: str) -> str:
    return f"{sub.replace('.', '/')}/{param}"


class FilmAdapter(Adapter):
    """Per-channel scale γ (init 1) and shift β (init 0) on one layer's output."""

    name = "bsa"
    Config = FilmConfig

    def __init__(self, layer: nn.Module, info: LayerInfo, config: FilmConfig) -> None:
        super().__init__(layer, info, config)
        if info.channels is None:
            raise TargetSelectionError(f"cannot tell the channel count of {info.path} ({type(layer).__name__})")
        ref = next(iter(layer.parameters()), None)
        kw = {"device": ref.device if ref is not None else None}
        self.gamma = nn.Parameter(torch.ones(info.channels, **kw))
        self.beta = nn.Parameter(torch.zeros(info.channels, **kw))
        self.channel_last = _channel_last(layer)
        self._shapes: dict[int, tuple[int, ...]] = {}
        self.deltas = nn.ParameterDict()
        if config.train_conditional:
            for sub, m in _conditional_producers(layer).items():
                for pname, p in m.named_parameters(recurse=False):
                    if pname in ("weight", "bias", "weight_orig"):
                        self.deltas[_key(sub, pname.replace("_orig", ""))] = nn.Parameter(torch.zeros_like(p))

    @classmethod
    def default_targets(cls, model: nn.Module, config: FilmConfig) -> list[str]:
        paths = hidden_norm_or_conv_layers(model)
        if config.adapt_first_linear:
            inside = tuple(p + "." for p in paths)
            linears = [
                n for n, m in model.named_modules()
                if isinstance(m, nn.Linear) and not n.startswith(inside) and n not in output_layers(model)
            ]
            paths = linears[:1] + paths
        return paths

    @classmethod
    def base_options(cls, model: nn.Module, layer_roles: dict[str, str]) -> dict:
        """Where the base names its latent projection (BigGAN's ``generator.gen_z``): that layer plus
        the default ones, as the BSA paper adapts BigGAN."""
        projection = layer_roles.get("latent_projection")
        return {"targets": [projection, *hidden_norm_or_conv_layers(model)]} if projection else {}

    @classmethod
    def check_target(cls, path: str, layer: nn.Module, config: FilmConfig) -> None:
        if config.train_conditional and is_norm_layer(layer) and not _conditional_producers(layer):
            raise TargetSelectionError(
                f"train_conditional=True but {path} ({type(layer).__name__}) has no conditional "
                "parameters (embedding tables or linear layers computing γ/β)"
            )

    def transform(self, layer, args, kwargs, output, ctx):
        gamma, beta = self.gamma, self.beta
        if gamma.dtype != output.dtype:
            gamma, beta = gamma.to(output.dtype), beta.to(output.dtype)
        if not self.channel_last:
            shape = self._shapes.get(output.dim()) or self._shapes.setdefault(
                output.dim(), (-1,) + (1,) * (output.dim() - 2)
            )
            gamma, beta = gamma.view(shape), beta.view(shape)
        return torch.addcmul(beta, output, gamma)

    def sublayer_hooks(self, layer: nn.Module) -> dict:
        if not len(self.deltas):
            return {}
        return {sub: self._delta_hook(sub, m) for sub, m in _conditional_producers(layer).items()}

    def _delta_hook(self, sub: str, module: nn.Module):
        weight_key, bias_key = _key(sub, "weight"), _key(sub, "bias")

        def hook(m, args, kwargs, output, ctx):
            x = args[0] if args else next(iter(kwargs.values()))
            dw = self.deltas[weight_key] if weight_key in self.deltas else None
            db = self.deltas[bias_key] if bias_key in self.deltas else None
            if isinstance(module, nn.Embedding):
                return output + F.embedding(x, dw)
            return output + F.linear(x, dw, db)

        return hook

    def regularization(self) -> torch.Tensor:
        reg = ((self.gamma - 1) ** 2).mean() + (self.beta**2).mean()
        return self.config.reg_weight * reg

    # --- exact folding into the base -----------------------------------------------------------
    def _fold_plan(self, layer: nn.Module) -> str:
        """Where γ/β fold: "affine" (the layer's weight/bias) or "tables" (CBN gamma/beta tables)."""
        for sub, m in _conditional_producers(layer).items():
            if hasattr(m, "weight_orig") and any(k.startswith(sub.replace(".", "/") + "/") for k in self.deltas):
                raise NotMergeableError(f"{sub} is spectrally normalized; its delta cannot be folded exactly")
        g, b = getattr(layer, "gamma", None), getattr(layer, "beta", None)
        if isinstance(g, nn.Embedding) and isinstance(b, nn.Embedding):
            return "tables"
        weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
        if isinstance(layer, nn.modules.conv._ConvTransposeNd) and layer.groups != 1:
            raise NotMergeableError("grouped transposed convolutions are not folded")
        if isinstance(weight, nn.Parameter) and isinstance(bias, nn.Parameter) and not self.deltas:
            return "affine"
        raise NotMergeableError(
            f"{type(layer).__name__} has no affine weight and bias (or gamma/beta embedding tables) "
            "to fold the scale and shift into"
        )

    def check_mergeable(self, layer: nn.Module) -> None:
        self._fold_plan(layer)

    def merge(self, layer: nn.Module) -> None:
        plan = self._fold_plan(layer)
        for sub, m in _conditional_producers(layer).items():
            for pname in ("weight", "bias"):
                key = _key(sub, pname)
                if key in self.deltas:
                    getattr(m, pname).add_(self.deltas[key].to(getattr(m, pname).dtype))
        if plan == "tables":
            g, b = layer.gamma.weight, layer.beta.weight
            b.mul_(self.gamma.to(b.dtype)).add_(self.beta.to(b.dtype))
            g.mul_(self.gamma.to(g.dtype))
            return
        w, b = layer.weight, layer.bias
        out_dim = 1 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else 0
        shape = [1] * w.dim()
        shape[out_dim] = -1
        w.mul_(self.gamma.to(w.dtype).view(shape))
        b.mul_(self.gamma.to(b.dtype)).add_(self.beta.to(b.dtype))
