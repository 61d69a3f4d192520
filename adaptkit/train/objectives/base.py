"""The contract between the training loop and an objective (what the generator is trained to do)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...bases.base import Base
from ..config import FitConfig
from ..ddp import Processes
from ..latent_search import search_latents
from ..perceptual import DEFAULT_WEIGHTS, PerceptualLoss

CLASS_SEARCH_DRAWS = 64
"""Draws per image when searching the classes of images that have none (a flat folder on a
class-conditional base)."""


def multiscale_l1(fake: torch.Tensor, real: torch.Tensor, scales: int) -> torch.Tensor:
    """Per image (B,): the mean absolute difference averaged over ``scales`` resolutions, each half
    the previous by 2×2 average pooling (1: the paper's plain L1). Plain L1 punishes a stroke one
    pixel off twice, so for sparse, misaligned strokes its optimum is a blank image; the coarser
    scales reward ink near the right place (the GLO paper's Laplacian-pyramid L1 idea)."""
    total = torch.zeros(len(fake), device=fake.device)
    for k in range(scales):
        if k:
            fake, real = F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)
        total = total + (fake - real).abs().flatten(1).mean(1)
    return total / scales


class Objective(nn.Module):
    """How a generator is trained, independent of the adapter (any adapter × any objective).

    The loop builds one per run and, every step, calls ``auxiliary_step(index)`` and then
    ``loss(index)`` for a batch of training-image indices; it sums ``weights[k] * terms[k]``
    and the adapter's own regularizer, backpropagates, and takes one Adam step over the adapter,
    any unfrozen base layers and ``param_groups()``.

    - ``param_groups``: the objective's own learnable tensors (e.g. per-image latents) with their
      learning rates, updated by the generator's optimizer.
    - ``auxiliary_step``: runs before each generator step. An adversarial objective (hinge loss,
      the base's discriminator fine-tuned) updates its discriminator here with its own optimizer,
      returned by ``optimizers()`` so that checkpoints hold its state; it returns its loss terms
      (plain floats in tensors) for the log.
    - ``checkpoint_state``: the tensors a resume checkpoint must hold.
    - ``learned_latents``: per-image latents and classes, if the objective learns them (written to
      ``latents.safetensors`` and used for ``reconstructions.png`` and ``interpolation.png``).
    - ``search_draws``: how many random latents per image :func:`search_latents` tries at the start
      (0: no search). Images whose label is −1 (no class folder, on a conditional base) always get
      the class that reconstructs them best (``CLASS_SEARCH_DRAWS`` draws at least); the search's
      latents are in ``searched_latents``.

    The base generator is in eval mode throughout (frozen running statistics). ``index`` is this
    process's share of the step's batch (``processes.shard``; all of it in a single process). The
    class attributes give the generator optimizer's Adam ``betas``, the adapter learning rate used
    when ``--lr-adapter`` is not given, the ``--ema-decay`` used when it is not given, and whether
    the objective uses a perceptual loss.
    """

    name: ClassVar[str] = ""
    betas: ClassVar[tuple[float, float]] = (0.9, 0.999)
    default_lr_adapter: ClassVar[float] = 0.05
    default_ema_decay: ClassVar[float] = 0.0
    uses_perceptual: ClassVar[bool] = True

    def __init__(
        self,
        base: Base,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        config: FitConfig,
        perceptual: PerceptualLoss | None,
        rng: torch.Generator,
        processes: Processes = Processes(),
    ) -> None:
        super().__init__()
        self.base = base
        self.config = config
        self.rng = rng
        self.processes = processes
        self.images, self.labels = images, labels  # plain tensors: not module state
        self.perceptual = perceptual
        self.perceptual_weight = 0.0
        if perceptual is not None:
            perceptual.prepare(images)
            weight = config.perceptual_weight
            self.perceptual_weight = DEFAULT_WEIGHTS[perceptual.name] if weight is None else weight
        self.weights: dict[str, float] = {}
        self.searched_latents: torch.Tensor | None = None
        unknown = labels is not None and bool((labels < 0).any())
        draws = max(self.search_draws(), CLASS_SEARCH_DRAWS if unknown else 0)
        if draws:
            search_rng = torch.Generator(images.device).manual_seed(config.seed + 2)
            self.searched_latents, self.labels = search_latents(
                base, len(images), labels, self.reconstruction_distances, candidates=draws, rng=search_rng)

    def search_draws(self) -> int:
        return 0

    def pixel_scales(self) -> int:
        """Resolutions of the pixel distance (see :func:`multiscale_l1`); at most as many as halve
        the images down to 4×4."""
        fit = max(1, int(self.images.shape[-1]).bit_length() - 2)
        return max(1, min(self.config.pixel_scales, fit))

    def reconstruction_distances(self, fake: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Per image: the pixel distance to training image ``index`` (:func:`multiscale_l1`) + λ_C × the
        perceptual one."""
        dist = multiscale_l1(fake, self.images[index], self.pixel_scales())
        if self.perceptual is not None and self.perceptual_weight:
            dist = dist + self.perceptual_weight * self.perceptual.distances(fake, index)
        return dist

    @classmethod
    def check_base(cls, base: Base, config: FitConfig) -> str | None:
        """Raise ``ConfigError`` if the objective cannot train on ``base`` with ``config`` (checked
        before the data is read); else a note for the run's log about a choice made for the user, if any."""
        return None

    def param_groups(self) -> list[dict[str, Any]]:
        return []

    def loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted loss terms (scalars) for the training images ``index``."""
        raise NotImplementedError

    def auxiliary_step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """The trainable parameters, by name."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def summary(self) -> dict[str, Any]:
        """The objective's own settings as used, for ``summary.json``."""
        return {}

    def learned_latents(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        return None
