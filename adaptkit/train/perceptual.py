"""Perceptual losses: distances between generated and training images in a frozen network's features.

``vgg16`` is the BSA paper's loss (L1 on the ReLU outputs of conv1_1 … conv4_3 of an ImageNet
VGG16), ``lpips`` the ``lpips`` package's AlexNet LPIPS, ``base`` the base's own feature network,
``rgb32`` the embedded ``features_rgb32`` CIFAR-10 classifier (L1 on its three stage outputs; it is
fully convolutional, so it runs at the base's own resolution, without resizing). Pretrained
ImageNet weights follow ``adaptkit.torchvision_weights``'s policy (``auto`` never downloads).
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import nn

from ..bases.base import Base
from ..bases.features_model import FEATURES_RGB32, Features32, load_features32
from ..errors import ConfigError, option
from ..torchvision_weights import is_cached, load_weights

DEFAULT_WEIGHTS = {"vgg16": 1e-3, "lpips": 1.0, "base": 1.0, "rgb32": 1.0}
"""λ_C per network: the paper's 0.001 for VGG16 (L1), 1.0 for LPIPS (a distance of the same scale
as the pixel L1), 1.0 for a base's feature network (0.1 let bsa blank out sparse strokes, see
``benchmarks/glo_collapse.py``) and for the embedded RGB one."""

VGG16_RELUS = (1, 3, 6, 8, 11, 13, 15, 18, 20, 22)
"""Indices in ``torchvision.models.vgg16().features`` of the ReLUs after conv1_1 … conv4_3."""
CACHE_BYTES = 256 * 2**20
"""Target features are computed once and kept when they take at most this much memory."""
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

FeatureFn = Callable[[torch.Tensor], list[torch.Tensor]]


def load_imagenet_weights(kind: str, perceptual: str, file: str | None = None) -> dict:
    """The torchvision state dict of ``kind`` for ``perceptual`` (a ``FitConfig.perceptual`` choice):
    from ``file``, else the cache, else downloaded into the cache (it was asked for by name)."""
    others = " / ".join(option("perceptual", p) for p in ("rgb32", "base", "none"))
    return load_weights(kind, file, needed_by=option("perceptual", perceptual),
                        instead=f"pass a weights file as {option('perceptual_file')}, or use {others}")


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class Vgg16Features(nn.Module):
    """The ReLU outputs of conv1_1 … conv4_3 of VGG16, for images in [-1, 1] (1 or 3 channels)."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.features = make_layers(cfgs["D"])[: VGG16_RELUS[-1] + 1]  # no classifier: 15M of 138M parameters
        if state_dict is not None:
            prefix = "features."
            self.features.load_state_dict({
                k[len(prefix):]: v for k, v in state_dict.items()
                if k.startswith(prefix) and int(k.split(".")[1]) <= VGG16_RELUS[-1]
            })
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 2 - 1)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 2)
        _frozen(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (_rgb(x) - self.mean) / self.std
        maps = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in VGG16_RELUS:
                maps.append(h)
        return maps


def base_features(base: Base) -> FeatureFn:
    """The base's feature network as a function returning a list of feature maps: its
    ``feature_maps(x)`` if it has one, else its output (a tensor or a list of tensors)."""
    net = base.feature_network
    if net is None:
        raise ConfigError(f"base {base.id} provides no feature network: choose another {option('perceptual')} "
                          "(rgb32, vgg16, lpips or none)")
    _frozen(net)
    fn = getattr(net, "feature_maps", net)

    def features(x: torch.Tensor) -> list[torch.Tensor]:
        out = fn(x)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    return features


def embedded_rgb_network() -> Features32:
    """The frozen ``features_rgb32`` network shipped with adaptkit."""
    network, _ = load_features32(name=FEATURES_RGB32)
    _frozen(network)
    return network


class PerceptualLoss(nn.Module):
    """A distance between generated images and training images, which it is given once."""

    name = ""

    def prepare(self, targets: torch.Tensor) -> None:
        """Remember the training images (N, C, H, W) the losses will compare against."""
        self.targets = targets

    def distances(self, fake: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The distance of each generated image to training image ``index`` (shape (B,))."""
        raise NotImplementedError

    def forward(self, fake: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.distances(fake, index).mean()


class FeatureL1Loss(PerceptualLoss):
    """Σ over feature layers of the mean absolute difference (the BSA paper's L1 perceptual loss).
    The targets' features are computed once when they fit in ``CACHE_BYTES``."""

    def __init__(self, name: str, features: FeatureFn, network: nn.Module | None = None) -> None:
        super().__init__()
        self.name = name
        self.features = features
        self.network = network  # registered so that .to(device) moves it
        self.cache: list[torch.Tensor] | None = None

    @torch.no_grad()
    def prepare(self, targets: torch.Tensor) -> None:
        super().prepare(targets)
        per_image = sum(f[0].numel() * 4 for f in self.features(targets[:1]))
        self.cache = None
        if per_image * len(targets) <= CACHE_BYTES:
            chunks = [[f.float() for f in self.features(targets[i:i + 64])] for i in range(0, len(targets), 64)]
            self.cache = [torch.cat(layer) for layer in zip(*chunks)]

    def distances(self, fake: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            real = [c[index] for c in self.cache]
        else:
            with torch.no_grad():
                real = self.features(self.targets[index])
        return sum((f.float() - r.float()).abs().flatten(1).mean(1) for f, r in zip(self.features(fake), real))


class LpipsLoss(PerceptualLoss):
    """The mean LPIPS distance (``lpips`` package, AlexNet trunk with its linear calibration)."""

    name = "lpips"

    def __init__(self, alexnet_state: dict[str, torch.Tensor] | None) -> None:
        super().__init__()
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.lpips = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        if alexnet_state is not None:
            with torch.no_grad():
                for stage in self.lpips.net.children():
                    for index, layer in stage.named_children():
                        for pname, p in layer.named_parameters():
                            p.copy_(alexnet_state[f"features.{index}.{pname}"])
        _frozen(self.lpips)

    def distances(self, fake: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.lpips(_rgb(fake), _rgb(self.targets[index])).float().flatten()


def resolve_perceptual(choice: str, base: Base, file: str | None = None) -> str:
    """The network ``auto`` stands for: the base's, else VGG16 when its weights are on disk, else
    the embedded ``rgb32`` for an RGB base, else none."""
    if choice != "auto":
        return choice
    if base.feature_network is not None:
        return "base"
    if file or is_cached("vgg16"):
        return "vgg16"
    if base.channels == 3:
        return "rgb32"
    return "none"


def build_perceptual(choice: str, base: Base, file: str | None = None) -> PerceptualLoss | None:
    """The perceptual loss ``choice`` (after ``resolve_perceptual``), or None for ``none``."""
    if choice == "none":
        return None
    if choice == "base":
        return FeatureL1Loss("base", base_features(base), base.feature_network)
    if choice == "vgg16":
        network = Vgg16Features(load_imagenet_weights("vgg16", choice, file))
        return FeatureL1Loss("vgg16", network, network)
    if choice == "lpips":
        return LpipsLoss(load_imagenet_weights("alexnet", choice, file))
    if choice == "rgb32":
        network = embedded_rgb_network()
        return FeatureL1Loss("rgb32", lambda x: network.feature_maps(_rgb(x)), network)
    raise ConfigError(f"unknown perceptual loss {choice!r}")
