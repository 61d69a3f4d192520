"""Small generators for the tests: SNGAN-projection style (conditional BN), DCGAN style (plain
BatchNorm), one without normalization, and BigGAN-deep from pytorch-pretrained-biggan's config."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CondBatchNorm2d(nn.Module):
    """BatchNorm without affine, then per-class γ/β from embedding tables (SNGAN projection)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gamma.weight, 1.0, 0.1)
        nn.init.normal_(self.beta.weight, 0.0, 0.1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class ResBlockUp(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = CondBatchNorm2d(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2 = CondBatchNorm2d(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class TinyCondGenerator(nn.Module):
    """Class-conditional, 16×16 RGB: linear → 2 residual up-blocks with CBN → BN → conv → tanh."""

    def __init__(self, latent_dim: int = 16, num_classes: int = 4, ch: int = 16) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.ch = latent_dim, num_classes, ch
        self.linear = nn.Linear(latent_dim, ch * 4 * 4)
        self.block1 = ResBlockUp(ch, ch, num_classes)
        self.block2 = ResBlockUp(ch, ch, num_classes)
        self.bn = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(-1, self.ch, 4, 4)
        h = self.block2(self.block1(h, y), y)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class TinyGenerator(nn.Module):
    """Unconditional DCGAN style with affine BatchNorm and transposed convolutions, 16×16 RGB."""

    def __init__(self, latent_dim: int = 16, ch: int = 16) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, ch * 2, 4),
            nn.BatchNorm2d(ch * 2),
            nn.ReLU(),
            nn.ConvTranspose2d(ch * 2, ch, 4, 2, 1),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.ConvTranspose2d(ch, ch, 4, 2, 1),
            nn.GroupNorm(4, ch),
            nn.ReLU(),
            nn.Conv2d(ch, 3, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class NoNormGenerator(nn.Module):
    """No normalization at all: adapters fall back to convolution outputs."""

    def __init__(self, latent_dim: int = 8) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.fc = nn.Linear(latent_dim, 8 * 4 * 4)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.to_rgb = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(z)).view(-1, 8, 4, 4)
        h = F.relu(self.conv2(F.relu(self.conv1(h))))
        return self.to_rgb(h)


def randomize_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm running statistics non-trivial values so eval-mode outputs are realistic."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def tiny_cond_generator(seed: int = 0, **kw) -> TinyCondGenerator:
    torch.manual_seed(seed)
    return randomize_stats(TinyCondGenerator(**kw), seed).eval()


def tiny_generator(seed: int = 0) -> TinyGenerator:
    torch.manual_seed(seed)
    return randomize_stats(TinyGenerator(), seed).eval()


def biggan_deep(channel_width: int = 8, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """BigGAN-deep built from BigGANConfig with sane random weights (no download)."""
    from pytorch_pretrained_biggan import BigGANConfig

    from adaptkit.bases.biggan import biggan_from_config

    return biggan_from_config(BigGANConfig(channel_width=channel_width, num_classes=num_classes), seed=seed).generator


def small_biggan_config():
    """BigGAN-deep's architecture at 16×16 with 4 blocks and 16-d latents (ImageNet's 1000 classes)."""
    from pytorch_pretrained_biggan import BigGANConfig

    return BigGANConfig(output_dim=16, z_dim=16, class_embed_dim=16, channel_width=4, num_classes=1000,
                        layers=[(True, 16, 8), (True, 8, 4), (False, 4, 2), (False, 2, 1)], attention_layer_position=1)


def biggan_inputs(model: nn.Module, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, model.config.z_dim, generator=g).clamp(-0.4, 0.4)
    y = F.one_hot(torch.arange(batch) % model.config.num_classes, model.config.num_classes).float()
    return z, y, 0.4
