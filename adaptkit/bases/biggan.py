"""BigGAN-deep 128/256/512 (ImageNet, 1000 classes) through ``pytorch-pretrained-biggan``.

Install with ``pip install 'adaptkit[biggan]'``. The weights download once from the package's URLs
into its cache (``~/.pytorch_pretrained_biggan``, or ``$PYTORCH_PRETRAINED_BIGGAN_CACHE``) and are
then found there without a network connection.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.context import CallSpec
from ..errors import AdaptkitError
from .base import Base, BaseSizes, declare_hub_model, declare_sizes

try:
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig
    from pytorch_pretrained_biggan import file_utils as biggan_files
    from pytorch_pretrained_biggan.model import PRETRAINED_CONFIG_ARCHIVE_MAP, PRETRAINED_MODEL_ARCHIVE_MAP
except ImportError as exc:  # reported by name by the base registry
    raise ImportError(
        f"the biggan-deep bases need pytorch-pretrained-biggan ({exc}): pip install 'adaptkit[biggan]'"
    ) from exc

BN_TRUNCATION = 0.4
"""The truncation whose precomputed batch-norm statistics BigGAN uses; fixed per base, so an adapter
is trained and sampled against the same network (only the latents' truncation varies)."""


def init_random_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a config-built BigGAN sane random weights: upstream leaves some tensors uninitialized
    (random memory overflows to NaN), and spectral norm starts from random singular vectors."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, 1.0 / max(p[0].numel(), 1) ** 0.5, generator=generator)
        model.generator.bn.weight.fill_(1.0)
        for m in model.modules():  # converge spectral norm's u, v by power iteration (cheap)
            if hasattr(m, "weight_orig") and hasattr(m, "weight_u"):
                w = m.weight_orig.flatten(1)
                v = torch.randn(w.shape[1], generator=generator)
                for _ in range(20):
                    u = F.normalize(w @ v, dim=0)
                    v = F.normalize(w.t() @ u, dim=0)
                m.weight_u.copy_(u)
                m.weight_v.copy_(v)
    return model


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in index order (torchvision's list; nothing is downloaded)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


LATENT_PROJECTION = "generator.gen_z"
"""BigGAN-deep's latent projection: the first linear layer on the latent path (``embeddings``,
first in module order, maps class vectors)."""


def biggan_from_config(
    config: BigGANConfig | dict[str, Any],
    state_dict: dict[str, torch.Tensor] | None = None,
    *,
    name: str = "biggan-deep",
    seed: int = 0,
    truncation: float = BN_TRUNCATION,
) -> Base:
    """A BigGAN-deep ``Base`` built from its config, with ``state_dict`` loaded (or sane random
    weights from ``seed`` when it is ``None``, as the tests do). ``truncation``: which precomputed
    batch-norm statistics the generator uses (in (0, 1])."""
    if not 0 < truncation <= 1:
        raise AdaptkitError(f"BigGAN's batch-norm truncation must be in (0, 1], got {truncation}")
    if isinstance(config, dict):
        config = BigGANConfig.from_dict(config)
    model = BigGAN(config)
    if state_dict is None:
        init_random_weights(model, seed)
    else:
        model.load_state_dict(state_dict, strict=False)  # strict=False as upstream's from_pretrained
    num_classes = config.num_classes

    def generate(generator: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        # ids ≥ num_classes are classes an adapter added (kpcbn): the one-hot vector grows to hold them
        width = max(num_classes, int(y.max()) + 1) if y.numel() else num_classes  # type: ignore[union-attr]
        return generator(z, F.one_hot(y, width).to(z.dtype), truncation)  # type: ignore[arg-type]

    return Base(
        id=name,
        generator=model.eval(),
        latent_dim=config.z_dim,
        resolution=config.output_dim,
        channels=3,
        num_classes=num_classes,
        class_names=imagenet_class_names() if num_classes == 1000 else None,
        call=CallSpec(latent=0, labels=1, latent_dim=config.z_dim, num_classes=num_classes),
        generate_fn=generate,
        layer_roles={"latent_projection": LATENT_PROJECTION},
    )


def _cached_file(url: str, cache_dir: Path) -> Path | None:
    """A file the package downloaded earlier (it records each URL in a ``.json`` beside it)."""
    for meta in sorted(cache_dir.glob("*.json")):
        try:
            if json.loads(meta.read_text()).get("url") == url:
                file = meta.with_suffix("")
                if file.is_file():
                    return file
        except (OSError, ValueError, AttributeError):
            continue
    return None


def _resolve(url: str, cache_dir: Path) -> Path:
    """The local copy of ``url``: from the cache if there, else downloaded by the package."""
    return _cached_file(url, cache_dir) or Path(biggan_files.cached_path(url, cache_dir=str(cache_dir)))


def load_pretrained(name_or_folder: str, cache_dir: str | os.PathLike | None = None) -> Base:
    """A pretrained BigGAN-deep: ``biggan-deep-128/256/512`` (cached, or downloaded once), or a
    folder holding the package's ``config.json`` and ``pytorch_model.bin``. The weights file is
    read with ``torch.load(weights_only=True)``: tensors only, no code runs."""
    cache = Path(cache_dir or biggan_files.PYTORCH_PRETRAINED_BIGGAN_CACHE)
    try:
        if name_or_folder in PRETRAINED_MODEL_ARCHIVE_MAP:
            config_file = _resolve(PRETRAINED_CONFIG_ARCHIVE_MAP[name_or_folder], cache)
            weights_file = _resolve(PRETRAINED_MODEL_ARCHIVE_MAP[name_or_folder], cache)
        else:
            folder = Path(name_or_folder)
            config_file, weights_file = folder / "config.json", folder / "pytorch_model.bin"
            if not (config_file.is_file() and weights_file.is_file()):
                raise FileNotFoundError(f"{folder} has no config.json and pytorch_model.bin")
        config = json.loads(Path(config_file).read_text())
        state_dict = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AdaptkitError(
            f"could not download or find the {name_or_folder} weights ({type(exc).__name__}: {exc}); "
            f"connect once to download them into {cache} (set PYTORCH_PRETRAINED_BIGGAN_CACHE to use "
            "another cache folder), or copy a cache that has them there"
        ) from None
    return biggan_from_config(config, state_dict, name=Path(name_or_folder).name)


@declare_hub_model("osanseviero/BigGAN-deep-128")  # the same pytorch-pretrained-biggan weights on the Hub
@declare_sizes(BaseSizes(resolution=128, channels=3, latent_dim=128, num_classes=1000))
def biggan_deep_128() -> Base:
    return load_pretrained("biggan-deep-128")


@declare_sizes(BaseSizes(resolution=256, channels=3, latent_dim=128, num_classes=1000))
def biggan_deep_256() -> Base:
    return load_pretrained("biggan-deep-256")


@declare_sizes(BaseSizes(resolution=512, channels=3, latent_dim=128, num_classes=1000))
def biggan_deep_512() -> Base:
    return load_pretrained("biggan-deep-512")
