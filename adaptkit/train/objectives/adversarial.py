"""``adversarial``: hinge loss against the base's discriminator, fully fine-tuned (the kpcbn paper's
training; with ``--adapter none --unfreeze all`` the TransferGAN baseline)."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...bases.base import Base
from ...errors import ConfigError
from .base import Objective


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's hinge terms: (mean relu(1 − D(x)), mean relu(1 + D(G(z))))."""
    return F.relu(1 - real).mean(), F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """The generator's hinge term: −mean D(G(z))."""
    return -fake.mean()


class ProjectionRows(nn.Module):
    """A class-projection embedding extended by ``count`` classes: ids < N go to the base's table
    (its rows, spectral norm and all, start as the base's), ids N … N+count−1 to new rows that
    start as the mean of the old rows' effective values (a new class is first judged like the
    average old class, as kpcbn's uniform start generates it)."""

    def __init__(self, old: nn.Embedding, count: int) -> None:
        super().__init__()
        self.old, self.num_old = old, old.num_embeddings
        with torch.no_grad():
            training = old.training
            mean = old.eval()(torch.arange(self.num_old, device=old.weight.device)).mean(0)
            old.train(training)
        self.rows = nn.Parameter(mean.expand(count, -1).clone())

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        new = y >= self.num_old
        old = self.old(torch.where(new, 0, y))
        return torch.where(new[..., None], F.embedding((y - self.num_old).clamp(min=0), self.rows), old)


def extend_projection(discriminator: nn.Module, num_classes: int) -> None:
    """Give ``discriminator``'s class-projection ``nn.Embedding`` rows up to ``num_classes``, in
    place. Nothing to do when no table is shorter; it must be the discriminator's only table."""
    tables = [(n, m) for n, m in discriminator.named_modules() if isinstance(m, nn.Embedding)]
    if not any(m.num_embeddings < num_classes for _, m in tables):
        return
    if len(tables) != 1:
        raise ConfigError(f"the base's discriminator has {len(tables)} nn.Embedding tables, not one class "
                          "projection to extend for the new classes")
    path, table = tables[0]
    parent, _, attr = path.rpartition(".")
    setattr(discriminator.get_submodule(parent), attr, ProjectionRows(table, num_classes - table.num_embeddings))


class AdversarialObjective(Objective):
    """Latents z ~ N(0, I) and classes drawn from the training images' labels each step. The
    generator step minimizes ``g_hinge``; ``auxiliary_step`` first takes ``d_steps`` Adam steps
    (β = (0, 0.999), ``lr_discriminator``) of a trainable copy of the base's discriminator on
    ``d_real`` + ``d_fake``. The base's own discriminator is never changed."""

    name = "adversarial"
    betas = (0.0, 0.999)
    default_lr_adapter = 2e-4
    uses_perceptual = False

    @classmethod
    def check_base(cls, base: Base) -> None:
        if base.discriminator is None:
            raise ConfigError(f"base {base.id} has no discriminator, which --objective adversarial trains "
                              "against: use --objective glo")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            raise ConfigError("--objective adversarial does not run data-parallel (torchrun) yet")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base = self.base
        self.check_base(base)
        self.discriminator = copy.deepcopy(base.discriminator).train().requires_grad_(False)
        if base.conditional:
            extend_projection(self.discriminator, base.num_classes)  # type: ignore[arg-type]
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.config.lr_discriminator,
                                            betas=self.betas)
        self.weights = {"g_hinge": 1.0}

    def _judge(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def _fakes(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """G(z, y) for n draws of z ~ N(0, I) and of training labels."""
        device = self.images.device
        z = torch.randn(n, self.base.latent_dim, generator=self.rng, device=device)
        y = None
        if self.labels is not None:
            y = self.labels[torch.randint(len(self.labels), (n,), generator=self.rng, device=device)]
        return self.base.generate(z, y).float(), y

    def auxiliary_step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        self.discriminator.requires_grad_(True)
        for step in range(self.config.d_steps):
            if step:
                index = torch.randint(len(self.images), index.shape, generator=self.rng, device=index.device)
            with torch.no_grad():
                fake, y_fake = self._fakes(len(index))
            labels = self.labels[index] if self.labels is not None else None
            d_real, d_fake = hinge_d_loss(self._judge(self.images[index], labels), self._judge(fake, y_fake))
            self.d_optimizer.zero_grad(set_to_none=True)
            (d_real + d_fake).backward()
            self.d_optimizer.step()
        self.discriminator.requires_grad_(False)
        return {"d_real": d_real.detach(), "d_fake": d_fake.detach()}

    def loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        fake, y = self._fakes(len(index))
        return {"g_hinge": hinge_g_loss(self._judge(fake, y))}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"discriminator": self.d_optimizer}

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """The discriminator's parameters and buffers (spectral norm's power-iteration vectors)."""
        return {f"discriminator.{k}": v for k, v in self.discriminator.state_dict().items()}
