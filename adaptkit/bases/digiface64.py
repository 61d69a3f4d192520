"""``digiface64``: a real pretrained RGB generator that works offline — a 64×64 DCGAN of faces.

The generator was trained on DigiFace-1M by the authors of the ``gan-face-generate`` package (MIT
licence), whose wheel ships its weights (``gan_face_generate/weights.tar``, a ``torch.save`` zip
holding ``{"netG_state_dict": …}``). adaptkit builds the network in its own module (the PyTorch
tutorial's DCGAN: nz = 100, ngf = 64) and reads only that file, with ``weights_only=True``; the
package is never imported. Install it without its CLI's dependencies::

    pip install --no-deps gan-face-generate

The DCGAN was never trained for the truncation trick (at 0.4 every sample is nearly the same grey
mean face), so this base samples untruncated latents by default.
"""
from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from ..core.context import CallSpec
from ..errors import WeightsNotFoundError
from .base import Base, BaseSizes, declare_sizes

DISTRIBUTION = "gan-face-generate"
WEIGHTS_FILE = "gan_face_generate/weights.tar"
INSTALL = f"pip install --no-deps {DISTRIBUTION}"
LATENT_DIM, WIDTH = 100, 64


class DCGAN64(nn.Module):
    """The DCGAN generator of the PyTorch tutorial: a (B, nz) latent → (B, 3, 64, 64) in [-1, 1].

    ConvTranspose2d + BatchNorm2d + ReLU four times (4 → 8 → 16 → 32 pixels), then ConvTranspose2d
    + Tanh; parameter names (``main.N``) match the tutorial's, so its state dicts load unchanged.
    """

    def __init__(self, latent_dim: int = LATENT_DIM, width: int = WIDTH, channels: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        widths = [width * 8, width * 4, width * 2, width]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip([latent_dim, *widths[:-1]], widths)):
            stride, padding = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(len(z), -1, 1, 1))


def weights_path() -> tuple[Path, str]:
    """The installed wheel's weights file and the distribution's version (the package is not
    imported); ``WeightsNotFoundError`` with the install command when it is missing."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise WeightsNotFoundError(f"base digiface64 needs the {DISTRIBUTION} wheel's weights: {INSTALL}") from None
    path = Path(str(dist.locate_file(WEIGHTS_FILE)))
    if not path.is_file():
        raise WeightsNotFoundError(f"{DISTRIBUTION} {dist.version} is installed but {WEIGHTS_FILE} is missing: "
                                   f"reinstall it with {INSTALL} --force-reinstall")
    return path, dist.version


def load_dcgan64(path: Path) -> DCGAN64:
    """The generator with the weights of ``path`` (tensors only: ``torch.load(weights_only=True)``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["netG_state_dict"]
        model = DCGAN64()
        model.load_state_dict(state)
    except Exception as exc:  # a corrupt or foreign file: one clear line
        raise WeightsNotFoundError(f"cannot read the DCGAN weights in {path} ({type(exc).__name__}: {exc}); "
                                   f"reinstall with {INSTALL} --force-reinstall") from None
    return model.eval()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@declare_sizes(BaseSizes(resolution=64, channels=3, latent_dim=LATENT_DIM))
def digiface64() -> Base:
    """The DigiFace-1M 64×64 RGB face DCGAN from the installed ``gan-face-generate`` wheel."""
    path, version = weights_path()
    generator = load_dcgan64(path)
    generator.requires_grad_(False)
    return Base(
        id="digiface64",
        generator=generator,
        latent_dim=LATENT_DIM,
        resolution=64,
        channels=3,
        call=CallSpec(latent=0, latent_dim=LATENT_DIM),
        revision=f"{DISTRIBUTION}=={version}",
        truncation=None,
        info={"source": f"{DISTRIBUTION} {version} ({WEIGHTS_FILE})", "weights_sha256": sha256(path),
              "trained_on": "DigiFace-1M", "licence": "MIT"},
    )
