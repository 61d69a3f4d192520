"""``adversarial``: hinge loss against a discriminator, fully fine-tuned: the base's own (the kpcbn
paper's training; with ``--adapter none --unfreeze all`` the TransferGAN baseline), or, for a base
that ships only a generator, one trained from scratch (``--discriminator scratch``)."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

from ...bases.base import Base
from ...errors import ConfigError, option
from ..augment import ON, Augmentation, parse_policy
from ..config import FitConfig
from ..scratch_discriminator import scratch_discriminator
from .base import Objective


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's hinge terms: (mean relu(1 − D(x)), mean relu(1 + D(G(z))))."""
    return F.relu(1 - real).mean(), F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """The generator's hinge term: −mean D(G(z))."""
    return -fake.mean()


def extended_table(old: nn.Embedding, num_classes: int) -> nn.Embedding:
    """``old`` with rows up to ``num_classes``, the new ones starting as the mean of the old ones
    (a new class is first judged like the average old class, as kpcbn's uniform start generates
    it). Under spectral norm (torch's parametrization) the whole table is normalised as one
    matrix, like the table of a discriminator built with ``num_classes`` classes; its power
    iteration starts from the exact singular vectors. At the start every row is then the base's
    times σ_old/σ_new (≤ 1), the new ones their mean."""
    if hasattr(old, "weight_orig"):
        raise ConfigError("the discriminator's class projection uses the old torch.nn.utils.spectral_norm hook; "
                          "extending it needs torch.nn.utils.parametrizations.spectral_norm")
    norm = next((p for p in getattr(getattr(old, "parametrizations", None), "weight", [])
                 if isinstance(p, _SpectralNorm)), None)
    raw = old.parametrizations.weight.original if norm is not None else old.weight
    table = nn.Embedding(num_classes, old.embedding_dim, device=raw.device, dtype=raw.dtype)
    with torch.no_grad():
        table.weight.copy_(torch.cat([raw, raw.mean(0).expand(num_classes - len(raw), -1)]))
    if norm is None:
        return table
    with torch.random.fork_rng(devices=[]):  # its random start vectors are replaced below
        table = spectral_norm(table, n_power_iterations=norm.n_power_iterations, eps=norm.eps, dim=norm.dim)
    extended: _SpectralNorm = table.parametrizations.weight[0]  # type: ignore[assignment]
    with torch.no_grad():
        u, _, vh = torch.linalg.svd(extended._reshape_weight_to_matrix(table.parametrizations.weight.original))
        extended._u.copy_(u[:, 0])
        extended._v.copy_(vh[0])
    return table.train(old.training)


def extend_projection(discriminator: nn.Module, num_classes: int) -> None:
    """Give ``discriminator``'s class-projection ``nn.Embedding`` rows up to ``num_classes``
    (:func:`extended_table`), in place. Nothing to do when no table is shorter; it must be the
    discriminator's only table."""
    tables = [(n, m) for n, m in discriminator.named_modules() if isinstance(m, nn.Embedding)]
    if not any(m.num_embeddings < num_classes for _, m in tables):
        return
    if len(tables) != 1:
        raise ConfigError(f"the base's discriminator has {len(tables)} nn.Embedding tables, not one class "
                          "projection to extend for the new classes")
    path, table = tables[0]
    parent, _, attr = path.rpartition(".")
    setattr(discriminator.get_submodule(parent), attr, extended_table(table, num_classes))


def discriminator_blocks(discriminator: nn.Module) -> list[nn.Module]:
    """The discriminator's stack of blocks, first to last: its first ``nn.Sequential`` or
    ``nn.ModuleList`` (in module order); none when it has neither."""
    stack = next((m for m in discriminator.modules() if isinstance(m, (nn.Sequential, nn.ModuleList))), None)
    return list(stack) if stack is not None else []


def freeze_blocks(discriminator: nn.Module, count: int) -> list[nn.Module]:
    """FreezeD (Mo et al. 2020): the first ``count`` blocks of ``discriminator`` stay as they are,
    parameters and buffers (eval mode: no power-iteration step of their spectral norms). Returns
    them."""
    blocks = discriminator_blocks(discriminator)[:count]
    for block in blocks:
        block.eval().requires_grad_(False)
    return blocks


def discriminator_source(base: Base, config: FitConfig) -> str:
    """``base`` or ``scratch``: what ``--discriminator`` stands for with ``base`` (``auto``: the
    base's own when it has one)."""
    if config.discriminator != "auto":
        return config.discriminator
    return "base" if base.discriminator is not None else "scratch"


class AdversarialObjective(Objective):
    """Latents z ~ N(0, I) and classes drawn from the training images' labels each step. The
    generator step minimizes ``g_hinge``; ``auxiliary_step`` first takes ``d_steps`` Adam steps
    (β = (0, 0.999), ``lr_discriminator``) of the discriminator on ``d_real`` + ``d_fake``: a
    trainable copy of the base's, less its first ``freeze_d`` blocks, or a new
    :class:`~adaptkit.train.scratch_discriminator.ScratchDiscriminator` seeded by ``--seed``. Every
    image the discriminator sees, real or generated, is augmented by ``--augment`` first. The
    base's own discriminator is never changed.

    Each step draws its latents, classes and augmentations for the whole batch from the run's
    generator and takes this process's share, so every process keeps the same generator state;
    the discriminator's gradients are averaged over the processes."""

    name = "adversarial"
    betas = (0.0, 0.999)
    default_lr_adapter = 2e-4
    default_ema_decay = 0.999
    uses_perceptual = False

    @classmethod
    def check_base(cls, base: Base, config: FitConfig) -> str | None:
        if discriminator_source(base, config) == "scratch":
            if config.freeze_d:
                raise ConfigError(f"{option('freeze_d', config.freeze_d)} keeps pretrained discriminator blocks, "
                                  f"and a discriminator trained from scratch has none")
            if config.discriminator == "auto":
                return f"base {base.id} ships no discriminator: training one from scratch (--discriminator scratch)"
            return None
        if base.discriminator is None:
            raise ConfigError(f"base {base.id} has no discriminator: train one from scratch with "
                              f"{option('discriminator', 'scratch')}, or use {option('objective', 'glo')}")
        blocks = len(discriminator_blocks(base.discriminator))
        if config.freeze_d > blocks:
            raise ConfigError(f"{option('freeze_d', config.freeze_d)}: the base's discriminator has {blocks} blocks")
        return None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base, cfg = self.base, self.config
        self.check_base(base, cfg)
        self.source = discriminator_source(base, cfg)
        if self.source == "scratch":
            judge: nn.Module = scratch_discriminator(base.resolution, base.channels, base.num_classes, cfg.seed + 5,
                                                     self.images.device)
        else:
            judge = copy.deepcopy(base.discriminator)
        self.discriminator = judge.train().requires_grad_(False)
        if base.conditional:
            extend_projection(self.discriminator, base.num_classes)  # type: ignore[arg-type]
        frozen = {id(p) for block in freeze_blocks(self.discriminator, cfg.freeze_d) for p in block.parameters()}
        self.trained = [p for p in self.discriminator.parameters() if id(p) not in frozen]
        self.d_optimizer = torch.optim.Adam(self.trained, lr=cfg.lr_discriminator, betas=self.betas)
        self.augment = Augmentation(parse_policy(cfg.augment or ON))
        self.batch = cfg.step_batch(len(self.images))
        self.weights = {"g_hinge": 1.0}

    def _share(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.processes.shard(tensor)

    def _judge(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D of the augmented ``x``."""
        if self.augment:
            drawn = self.augment.draw(self.batch, (x.shape[-2], x.shape[-1]), self.rng)
            x = self.augment(x, {k: self._share(v) for k, v in drawn.items()})
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def _fakes(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """G(z, y) for this process's share of a batch of z ~ N(0, I) and of training labels."""
        device = self.images.device
        z = torch.randn(self.batch, self.base.latent_dim, generator=self.rng, device=device)
        y = None
        if self.labels is not None:
            y = self._share(self.labels[torch.randint(len(self.labels), (self.batch,), generator=self.rng,
                                                      device=device)])
        return self.base.generate(self._share(z), y).float(), y

    def auxiliary_step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        for p in self.trained:
            p.requires_grad_(True)
        for step in range(self.config.d_steps):
            if step:
                index = self._share(torch.randint(len(self.images), (self.batch,), generator=self.rng,
                                                  device=index.device))
            with torch.no_grad():
                fake, y_fake = self._fakes()
            labels = self.labels[index] if self.labels is not None else None
            d_real, d_fake = hinge_d_loss(self._judge(self.images[index], labels), self._judge(fake, y_fake))
            self.d_optimizer.zero_grad(set_to_none=True)
            (d_real + d_fake).backward()
            self.processes.average_gradients(self.trained)
            self.d_optimizer.step()
        self.discriminator.requires_grad_(False)
        return {"d_real": d_real.detach(), "d_fake": d_fake.detach()}

    def loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        fake, y = self._fakes()
        return {"g_hinge": hinge_g_loss(self._judge(fake, y))}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"discriminator": self.d_optimizer}

    def summary(self) -> dict[str, Any]:
        return {"augment": list(self.augment.transforms), "freeze_d": self.config.freeze_d,
                "discriminator": self.source}

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """The discriminator's parameters and buffers (spectral norm's power-iteration vectors)."""
        return {f"discriminator.{k}": v for k, v in self.discriminator.state_dict().items()}
