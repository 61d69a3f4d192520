"""Feature extractors for the metrics: Inception-v3 when its weights are on disk, else an embedded
network: ``features_rgb32`` (a CIFAR-10 classifier) for RGB images, ``features32`` (a glyph
classifier) for grayscale ones.

Images enter as (N, C, H, W) in [-1, 1]; each extractor resizes them to its own input size
(bilinear, antialiased) and converts channels (gray → RGB by repetition, RGB → gray by the
ITU-R 601 luma weights), so real and generated sets of any size can be compared.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EvaluationError, WeightsNotFoundError
from ..torchvision_weights import cached_weights_path, is_cached, load_weights

LUMA = (0.299, 0.587, 0.114)
EXTRACTOR_KINDS = ("auto", "inception", "embedded")


def check_feature_sets(generated: torch.Tensor, real: torch.Tensor, metric: str, *, min_rows: int = 1) -> None:
    """Both sets must be (N, D) with one D and at least ``min_rows`` rows, or ``metric`` is refused."""
    if generated.dim() != 2 or real.dim() != 2 or generated.shape[1] != real.shape[1]:
        raise EvaluationError(f"{metric} needs two (N, D) feature sets of one D, got "
                              f"{tuple(generated.shape)} and {tuple(real.shape)}")
    if len(generated) < min_rows or len(real) < min_rows:
        raise EvaluationError(f"{metric} needs at least {min_rows} generated and {min_rows} real images")


def resize_and_convert(images: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """``images`` (N, 1|3, H, W) in [-1, 1] → (N, channels, resolution, resolution) in [-1, 1]."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise EvaluationError(f"images must be (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] != channels:
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        else:
            images = torch.einsum("nchw,c->nhw", images, images.new_tensor(LUMA)).unsqueeze(1)
    if images.shape[-2:] != (resolution, resolution):
        images = F.interpolate(images, size=(resolution, resolution), mode="bilinear",
                               align_corners=False, antialias=True)
    return images


@dataclass(eq=False)
class FeatureExtractor:
    """A frozen network with ``features(x)`` → (B, D) (and optionally ``feature_maps(x)`` → a list
    of (B, C, h, w) activations), its input ``resolution`` and ``channels``, and a ``name`` that
    reports say."""

    name: str
    network: nn.Module
    resolution: int
    channels: int

    @property
    def has_feature_maps(self) -> bool:
        return callable(getattr(self.network, "feature_maps", None))

    @property
    def device(self) -> torch.device:
        p = next(iter(self.network.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: torch.device | str | None) -> FeatureExtractor:
        """Move the network to ``device`` (None: where it is); returns this extractor."""
        if device is not None:
            self.network.to(device)
        return self

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Resize and convert ``images`` to the network's input, on its device."""
        return resize_and_convert(images.to(self.device, torch.float32), self.resolution, self.channels)

    @torch.no_grad()
    def features(
        self, images: torch.Tensor, *, batch_size: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Features of ``images`` as a float64 CPU tensor (N, D), computed in batches."""
        self.network.eval()
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            out.append(self.network.features(self.prepare(batch)).double().cpu())
            if on_batch is not None:
                on_batch(len(batch))
        return torch.cat(out)

    @torch.no_grad()
    def feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        if not self.has_feature_maps:
            raise EvaluationError(f"feature extractor {self.name} has no feature_maps")
        self.network.eval()
        return self.network.feature_maps(self.prepare(images))


class InceptionFeatures(nn.Module):
    """torchvision's Inception-v3 up to its 2048-d global average pool (the features FID uses).

    Built with ``transform_input=False``: the Google weights expect inputs in [-1, 1], which is
    what adaptkit images already are.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        from torchvision.models import inception_v3

        super().__init__()
        self.net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
        try:
            self.net.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise WeightsNotFoundError(f"these are not torchvision Inception-v3 weights: "
                                       f"{str(exc).splitlines()[0]}") from None
        self.net.fc = nn.Identity()
        self.net.eval()
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def load_inception(weights: str | os.PathLike | None = None) -> FeatureExtractor:
    """Inception-v3 from ``weights`` (a ``.pth`` or ``.safetensors`` state dict), by default
    torchvision's file in its cache, downloaded there if missing (``adaptkit.torchvision_weights``)."""
    state = load_weights("inception_v3", weights, needed_by="Inception-v3 features",
                         instead="pass the weights file, or use the embedded extractor")
    return FeatureExtractor("inception-v3 (torchvision IMAGENET1K_V1, 2048-d)",
                            InceptionFeatures(state), resolution=299, channels=3)


def load_embedded_extractor(channels: int = 1) -> FeatureExtractor:
    """The embedded network shipped with adaptkit for ``channels``-channel images: for 1 the
    ``features32`` glyph classifier (32×32 gray, white on black), for 3 the ``features_rgb32``
    CIFAR-10 classifier (32×32 RGB)."""
    from ..bases.features_model import FEATURES32, FEATURES_RGB32, load_features32

    if channels not in (1, 3):
        raise EvaluationError(f"the embedded extractors take 1 or 3 channels, not {channels}")
    name = FEATURES_RGB32 if channels == 3 else FEATURES32
    network, meta = load_features32(name=name)
    network.requires_grad_(False)
    dim = meta["model"]["feature_dim"]
    return FeatureExtractor(f"{name} (embedded, {dim}-d)", network, resolution=32, channels=channels)


def load_feature_extractor(
    kind: str = "auto", *, channels: int = 1, inception_weights: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
) -> tuple[FeatureExtractor, str | None]:
    """The extractor for ``kind`` (``auto``, ``inception`` or ``embedded``) and, when ``auto`` fell
    back to the embedded one, a note saying why. ``channels`` (1 or 3), of the images to compare,
    picks the embedded network."""
    if kind not in EXTRACTOR_KINDS:
        raise EvaluationError(f"unknown feature extractor {kind!r} (choose from {', '.join(EXTRACTOR_KINDS)})")
    if kind == "auto":
        if inception_weights is None and not is_cached("inception_v3"):
            extractor = load_embedded_extractor(channels).to(device)
            return extractor, (f"Inception-v3 weights not found at {cached_weights_path('inception_v3')}: "
                               f"used the embedded extractor "
                               f"{extractor.name}; its numbers are not comparable with Inception-based ones")
        kind = "inception"
    extractor = load_inception(inception_weights) if kind == "inception" else load_embedded_extractor(channels)
    return extractor.to(device), None
