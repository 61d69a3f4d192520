"""``glo``: the BSA paper's supervised objective, one learned latent per training image."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Objective, multiscale_l1


def latent_spread(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """mean over t of the nearest z's squared distance + mean over z of the nearest t's (the BSA
    paper's term that keeps the learned latents spread like the samples t ~ N(0, I))."""
    d = z.pow(2).sum(1, keepdim=True) - 2 * z @ t.T + t.pow(2).sum(1)
    return d.min(dim=0).values.mean() + d.min(dim=1).values.mean()


LATENT_WEIGHT = 0.05
"""λ_z on bases sampled with truncation. Untruncated bases get 0: with few latents in high
dimension, ``latent_spread`` is smallest when every latent sits at the origin (on digiface64 the
searched latents shrank toward it within a few hundred steps and every reconstruction became the
same smear), and only truncated sampling draws there."""


class GloObjective(Objective):
    """Latents z_i, one per image, starting at the best of ``--latent-search`` draws of N(0, I)
    (zero, as the paper, when it is 0); G is fed z_i + ε, ε ~ N(0, noise_std²). Terms: ``pixel``
    (L1 over ``--pixel-scales`` resolutions, :func:`multiscale_l1`), ``perceptual`` (weight λ_C)
    and ``latent`` (:func:`latent_spread` against
    ``latent_samples`` × batch draws of N(0, I), weight λ_z)."""

    name = "glo"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        start = self.searched_latents if cfg.latent_search else None
        if start is None:
            start = torch.zeros(len(self.images), self.base.latent_dim, device=self.images.device)
        self.latents = nn.Parameter(start.clone())
        self.weights = {"pixel": 1.0, "latent": self.latent_weight()}
        if self.perceptual is not None:
            self.weights["perceptual"] = self.perceptual_weight

    def latent_weight(self) -> float:
        """--latent-weight, else ``LATENT_WEIGHT`` when the base samples truncated latents, else 0."""
        if self.config.latent_weight is not None:
            return self.config.latent_weight
        return LATENT_WEIGHT if self.base.truncation is not None else 0.0

    def search_draws(self) -> int:
        return self.config.latent_search

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.latents], "lr": self.config.lr_latent, "name": "latents"}]

    def loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.latents[index]
        noise = torch.randn(z.shape, generator=self.rng, device=z.device, dtype=z.dtype)
        labels = self.labels[index] if self.labels is not None else None
        fake = self.base.generate(z + self.config.noise_std * noise, labels).float()
        terms = {"pixel": multiscale_l1(fake, self.images[index], self.pixel_scales()).mean()}
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(fake, index)
        if self.weights["latent"]:
            t = torch.randn(self.config.latent_samples * len(index), z.shape[1], generator=self.rng,
                            device=z.device, dtype=z.dtype)
            terms["latent"] = latent_spread(z.float(), t.float())
        return terms

    def learned_latents(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.latents.detach(), self.labels
