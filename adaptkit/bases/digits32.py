"""``digits32``: the embedded base — a class-conditional 32×32 grayscale GAN for digits 0–7.

Trained by ``examples/pretrain_base.py`` on MNIST digits 0–7 (8 and 9 are held out as class-extension
targets); its weights ship inside the package, so it works offline. It comes with its projection
discriminator (for adversarial objectives) and the ``features32`` classifier as its feature network
(perceptual loss and metrics).
"""
from __future__ import annotations

from ..core.context import CallSpec
from .base import Base, BaseSizes, declare_sizes
from .digits32_model import load_digits32
from .features_model import load_features32


@declare_sizes(BaseSizes(resolution=32, channels=1, latent_dim=64, num_classes=8))
def digits32() -> Base:
    """The embedded base, loaded from the package's weights."""
    generator, discriminator, meta = load_digits32()
    features, _ = load_features32()
    for module in (generator, discriminator, features):
        module.requires_grad_(False)
    num_classes = generator.num_classes
    return Base(
        id="digits32",
        generator=generator,
        latent_dim=generator.latent_dim,
        resolution=32,
        channels=1,
        num_classes=num_classes,
        class_names=list(meta.get("classes", [str(i) for i in range(num_classes)])),
        call=CallSpec(latent=0, labels=1, latent_dim=generator.latent_dim, num_classes=num_classes),
        discriminator=discriminator,
        feature_network=features.eval(),
    )
