"""Knowledge propagation across classes (Shahbazi et al., CVPR 2021): add M classes to a frozen
class-conditional generator. In every conditional BN, the new classes' γ (and, separately, β) are
``S · Γ̂ + r``: learned combinations S of an updatable copy Γ̂ of the old classes' parameters, plus
a residual r. The old classes keep the base's own parameters, bit for bit."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm

from adaptkit.core import (
    Adapter,
    AdapterConfig,
    AdapterConfigError,
    CallContext,
    CallContextError,
    LayerInfo,
    NotMergeableError,
    TargetSelectionError,
    norm_layers,
)

_STATE_KEY = "kpcbn"


@dataclass
class KPConfig(AdapterConfig):
    """Options of the ``kpcbn`` adapter.

    num_new_classes: M; the new classes get the ids N … N+M−1 (N: the base's class count).
    lambda_s: weight of the L1 term on the similarity scores S, λ_s · Σ mean|S| (per γ/β table).
    lambda_r: weight of the L2 term on the residuals r, λ_r · Σ mean(r²) (per γ/β table).
    init: how each new class starts: ``"uniform"`` (every score 1/N: the average of the old
        classes) or a list of M old class ids (new class j starts as exactly old class init[j]).
        Γ̂ starts as the old classes' parameters and r at 0 either way.
    class_embedding: where γ/β are linear layers of a condition vector (BigGAN-deep): the path of
        the ``nn.Linear`` mapping the class vector to the class embedding, which fills the last
        inputs of those linears (BigGAN-deep: ``cat(z, embeddings(class_vector))``).
    propagate: learn S and Γ̂ (knowledge propagation). ``False`` freezes them at their start, so
        each new class is its starting γ/β plus a learned residual r: the paper's "BSA" class
        extension without propagation (its Fig. 7).
    baked: the compact inference form: one M × C table per γ/β; S, Γ̂ and r are gone.
    """

    num_new_classes: int = 1
    lambda_s: float = 0.01
    lambda_r: float = 0.01
    init: str | list[int] = "uniform"
    class_embedding: str = "embeddings"
    propagate: bool = True
    baked: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.num_new_classes, bool) or not isinstance(self.num_new_classes, int) or self.num_new_classes < 1:
            raise AdapterConfigError(f"num_new_classes must be a positive integer, got {self.num_new_classes!r}")
        if self.lambda_s < 0 or self.lambda_r < 0:
            raise AdapterConfigError("lambda_s and lambda_r must be ≥ 0")
        if isinstance(self.init, str):
            if self.init != "uniform":
                raise AdapterConfigError(f"init must be 'uniform' or a list of old class ids, got {self.init!r}")
        elif len(self.init) != self.num_new_classes or not all(isinstance(c, int) for c in self.init):
            raise AdapterConfigError(
                f"init lists the old class each new class starts from: {self.num_new_classes} integers, got {self.init!r}"
            )


def initial_scores(config: KPConfig, num_old: int) -> torch.Tensor:
    """S at start (M × N): the old-class mixture each new class starts as."""
    m = config.num_new_classes
    if config.init == "uniform":
        return torch.full((m, num_old), 1.0 / num_old)
    bad = [c for c in config.init if not 0 <= c < num_old]
    if bad:
        raise AdapterConfigError(f"init names old classes {bad}, but the base has classes 0…{num_old - 1}")
    return F.one_hot(torch.tensor(config.init), num_old).float()


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight ``module``'s eval-mode forward multiplies by: W/σ for spectral norm (from its stored
    singular vectors, without a power-iteration step), the plain weight otherwise."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm):
            return hook.compute_weight(module, do_power_iteration=False)
    if parametrize.is_parametrized(module, "weight") and module.training:
        module.eval()  # a training-mode parametrization would step its power iteration
        try:
            return module.weight
        finally:
            module.train()
    return module.weight


def _producers(layer: nn.Module) -> dict[str, nn.Module]:
    """The sub-modules computing a conditional norm layer's class-specific γ/β: its embedding
    tables (SNGAN projection style), else its linear layers (BigGAN style)."""
    tables = {n: m for n, m in layer.named_modules() if n and isinstance(m, nn.Embedding)}
    return tables or {n: m for n, m in layer.named_modules() if n and isinstance(m, nn.Linear)}


def _key(sub: str) -> str:
    return sub.replace(".", "/")


class NewClassRows(NamedTuple):
    """One call's new-class samples, shared by the hooks: ``rows`` marks them; for integer labels
    ``index`` is each sample's new-class index (0 … M−1), for class vectors ``weights`` holds the
    new-class columns (… × M)."""

    rows: torch.Tensor
    index: torch.Tensor | None = None
    weights: torch.Tensor | None = None


class Propagation(nn.Module):
    """The new classes' values of one γ or β producer: ``S · Γ̂ + r`` (M × C).

    For producers whose base output stays in the sum (linear layers of a condition vector), the
    value the base already adds for the new classes' anchor mixture is subtracted, so the table is
    the correction on top of the base (exactly 0 at start).
    """

    def __init__(self, prior: torch.Tensor, scores: torch.Tensor, relative: bool, propagate: bool = True) -> None:
        super().__init__()
        self.prior = nn.Parameter(prior.detach().clone(), requires_grad=propagate)  # Γ̂: N × C, the old classes' values
        self.scores = nn.Parameter(scores.to(prior).clone(), requires_grad=propagate)  # S: M × N
        self.residual = nn.Parameter(prior.new_zeros(scores.shape[0], prior.shape[1]))  # r: M × C
        anchor = self.propagate().detach() if relative else None
        self.register_buffer("anchor", anchor, persistent=False)  # recomputed from the base on load

    def propagate(self) -> torch.Tensor:
        return torch.addmm(self.residual, self.scores, self.prior)

    def table(self) -> torch.Tensor:
        table = self.propagate()
        return table if self.anchor is None else table - self.anchor

    def penalties(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean |S|, mean r²), as the official code computes its L1/L2 terms."""
        return self.scores.abs().mean(), self.residual.square().mean()


class KnowledgePropagationAdapter(Adapter):
    """New classes in one conditional BN layer: one :class:`Propagation` per γ/β producer."""

    name = "kpcbn"
    Config = KPConfig
    uses_context = True
    # glo's 0.05 (tuned for bsa's direct scales) blanked both new classes of two Omniglot characters
    # from step 50: a step moves all N scores of S, Γ̂ and r, so γ/β move several times the rate;
    # 5e-3 drew both, apart (benchmarks/kpcbn_new_classes.py, docs/adapters.md).
    recommended_lr = {"glo": 5e-3}

    def __init__(self, layer: nn.Module, info: LayerInfo, config: KPConfig) -> None:
        super().__init__(layer, info, config)
        producers = _producers(layer)
        self.replaces = isinstance(next(iter(producers.values())), nn.Embedding)
        embedding = None if self.replaces else self._class_embedding(info, config)
        self.num_old = self._num_old(producers, embedding, info.path)
        m = config.num_new_classes
        if config.baked:
            ref = next(iter(layer.parameters()))
            self.tables = nn.ParameterDict({
                _key(sub): nn.Parameter(ref.new_zeros(m, self._channels(p))) for sub, p in producers.items()
            })
            return
        scores = initial_scores(config, self.num_old)
        with torch.no_grad():
            self.propagation = nn.ModuleDict({
                _key(sub): Propagation(self._prior(p, embedding, info.path), scores, relative=not self.replaces,
                                       propagate=config.propagate)
                for sub, p in producers.items()
            })

    # --- where the old classes' γ/β live ---------------------------------------------------------
    @staticmethod
    def _class_embedding(info: LayerInfo, config: KPConfig) -> nn.Linear:
        where = f"{info.path}'s γ/β are linear layers of a condition vector, so kpcbn needs the class embedding"
        if info.model is None:
            raise TargetSelectionError(f"{where}, but was not given the model")
        try:
            embedding = info.model.get_submodule(config.class_embedding)
        except AttributeError:
            raise TargetSelectionError(
                f"{where}: the model has no module {config.class_embedding!r} (pass class_embedding=PATH)"
            ) from None
        if not isinstance(embedding, nn.Linear):
            raise TargetSelectionError(
                f"{where}: {config.class_embedding!r} is a {type(embedding).__name__}, not an nn.Linear "
                "mapping the class vector to the embedding"
            )
        return embedding

    @staticmethod
    def _num_old(producers: dict[str, nn.Module], embedding: nn.Linear | None, path: str) -> int:
        counts = {p.num_embeddings for p in producers.values()} if embedding is None else {embedding.in_features}
        if len(counts) != 1:
            raise TargetSelectionError(f"the class tables of {path} disagree on the number of classes: {sorted(counts)}")
        return counts.pop()

    @staticmethod
    def _channels(producer: nn.Module) -> int:
        return producer.embedding_dim if isinstance(producer, nn.Embedding) else producer.out_features

    @staticmethod
    def _prior(producer: nn.Module, embedding: nn.Linear | None, path: str) -> torch.Tensor:
        """The old classes' values (N × C): the table itself, or for a linear γ/β of
        ``cat(z, class_embedding(y))`` its class part, ``W[:, -E:] · E`` (one row per old class)."""
        if embedding is None:
            return effective_weight(producer)
        w, e = effective_weight(producer), effective_weight(embedding)  # C × in, E × N
        if w.shape[1] < e.shape[0]:
            raise TargetSelectionError(
                f"{path}: a γ/β linear has {w.shape[1]} inputs, fewer than the {e.shape[0]}-wide class embedding"
            )
        return (w[:, -e.shape[0]:] @ e.to(w)).T

    @classmethod
    def default_targets(cls, model: nn.Module, config: KPConfig) -> list[str]:
        modules = dict(model.named_modules())
        return [p for p in norm_layers(model) if _producers(modules[p])]

    @classmethod
    def check_target(cls, path: str, layer: nn.Module, config: KPConfig) -> None:
        if not _producers(layer):
            raise TargetSelectionError(
                f"{path} ({type(layer).__name__}) is not a conditional norm layer: it has no embedding "
                "tables or linear layers computing class-specific γ/β"
            )

    # --- per call ---------------------------------------------------------------------------------
    @classmethod
    def new_classes(cls, config: KPConfig) -> int:
        return config.num_new_classes

    @classmethod
    def request_new_classes(cls, options: dict, count: int) -> dict:
        return {"num_new_classes": count, **options}

    @classmethod
    def prepare_call(cls, adapters: list[Adapter], config: KPConfig, ctx: CallContext) -> None:
        """Route new classes away from the base: ids ≥ N become their anchor class (the old class
        with the largest starting score); a class vector wider than N (up to N+M columns; missing
        ones count as 0) becomes width N, its new-class weights replaced by their anchor mixtures.
        The hooks then put in the new classes' γ/β."""
        labels = ctx.labels
        first: KnowledgePropagationAdapter = adapters[0]  # type: ignore[assignment]
        if labels is None:
            raise CallContextError(
                "kpcbn needs the class labels of every call; tell attach_adapter where they are "
                "with call=CallSpec(labels=…)"
            )
        n, m = first.num_old, config.num_new_classes
        if first.replaces:
            if labels.is_floating_point():
                raise CallContextError("this generator's γ/β are class tables: call it with integer class ids")
            rows = labels >= n
            if not bool(rows.any()):
                return
            if bool((labels >= n + m).any() | (labels < 0).any()):
                bad = labels[(labels >= n + m) | (labels < 0)].unique().tolist()
                raise CallContextError(f"class ids {bad} are out of range: {n} base classes + {m} new ones")
            index = (labels - n).clamp(0, m - 1)
            anchors = initial_scores(config, n).argmax(1).to(labels.device)
            ctx.set_base_labels(torch.where(rows, anchors[index], labels))
            ctx.state[_STATE_KEY] = NewClassRows(rows, index=index)
            return
        if not labels.is_floating_point():
            raise CallContextError("this generator takes a class vector (one-hot or soft), not integer class ids")
        width = labels.shape[-1]
        if width == n:
            return
        if not n < width <= n + m:
            raise CallContextError(f"the class vector has {width} columns; expected {n} (base classes) to {n + m}")
        old, new = labels[..., :n].contiguous(), F.pad(labels[..., n:], (0, n + m - width))
        rows = new.ne(0).any(-1)
        if bool(rows.any()):
            anchored = old + new @ initial_scores(config, n).to(new)
            old = torch.where(rows[..., None], anchored, old)
            ctx.state[_STATE_KEY] = NewClassRows(rows, weights=new)
        ctx.set_base_labels(old)

    def transform(self, layer, args, kwargs, output, ctx):
        return output

    def sublayer_hooks(self, layer: nn.Module) -> dict:
        return {sub: self._hook(_key(sub)) for sub in _producers(layer)}

    def table(self, key: str) -> torch.Tensor:
        """The new classes' values (M × C) of one γ/β producer; for linear producers the correction
        added to the base's output."""
        return self.tables[key] if self.config.baked else self.propagation[key].table()

    def _hook(self, key: str):
        def hook(module, args, kwargs, output, ctx):
            found = ctx.state.get(_STATE_KEY) if ctx is not None else None
            if found is None:
                return output
            if found.rows.shape != output.shape[:-1]:
                raise CallContextError(
                    f"kpcbn: {self.info.path} computed γ/β for {tuple(output.shape[:-1])} samples but the "
                    f"call's labels have shape {tuple(found.rows.shape)}"
                )
            table = self.table(key).to(output.dtype)
            if found.index is not None:
                return torch.where(found.rows[..., None], F.embedding(found.index, table), output)
            return torch.where(found.rows[..., None], output + found.weights.to(output.dtype) @ table, output)

        return hook

    def extra_repr(self) -> str:
        source = "tables" if self.replaces else "class embedding → linears"
        form = "baked" if self.config.baked else f"S·Γ̂+r from {source}"
        keys = self.tables if self.config.baked else self.propagation
        return f"{', '.join(keys)}: {self.config.num_new_classes} new of {self.num_old} old classes, {form}"

    # --- loss, bake, merge ------------------------------------------------------------------------
    def regularization(self) -> torch.Tensor:
        if self.config.baked:
            return super().regularization()
        terms = self.regularization_terms()
        return self.config.lambda_s * terms["similarity_l1"] + self.config.lambda_r * terms["residual_l2"]

    def regularization_terms(self) -> dict[str, torch.Tensor]:
        """``similarity_l1`` (Σ mean|S|) and ``residual_l2`` (Σ mean r²) over this layer's γ/β tables."""
        if self.config.baked:
            return {}
        l1, l2 = map(sum, zip(*(p.penalties() for p in self.propagation.values())))
        return {"similarity_l1": l1, "residual_l2": l2}

    @classmethod
    def baked_config(cls, config: KPConfig) -> KPConfig | None:
        return None if config.baked else dataclasses.replace(config, baked=True)

    def baked_state_dict(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {f"tables.{key}": p.table() for key, p in self.propagation.items()}

    def check_mergeable(self, layer: nn.Module) -> None:
        raise NotMergeableError("new classes need γ/β rows the base's tables do not have")
