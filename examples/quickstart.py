"""adaptkit in one page: attach a bsa adapter to a frozen generator, fit it to a few images,
save it (only the adapter), load it onto a fresh copy of the base, and check the outputs match.

    python examples/quickstart.py
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import adaptkit


class SmallGenerator(nn.Module):
    """A stand-in for your pretrained generator: linear → 2 up-sampling conv blocks with BatchNorm."""

    def __init__(self, latent_dim: int = 32, ch: int = 32) -> None:
        super().__init__()
        self.latent_dim, self.ch = latent_dim, ch
        self.fc = nn.Linear(latent_dim, ch * 4 * 4)
        self.conv1, self.bn1 = nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch)
        self.conv2, self.bn2 = nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch)
        self.bn3, self.to_rgb = nn.BatchNorm2d(ch), nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.ch, 4, 4)
        h = F.relu(self.bn1(self.conv1(F.interpolate(h, scale_factor=2))))
        h = F.relu(self.bn2(self.conv2(F.interpolate(h, scale_factor=2))))
        return torch.tanh(self.to_rgb(F.relu(self.bn3(h))))


def main() -> None:
    torch.manual_seed(0)
    base = SmallGenerator().eval()
    # 25 "target domain" images: reddish blobs the base has never drawn.
    images = torch.rand(25, 3, 16, 16) * 0.2 + torch.tensor([0.6, -0.5, -0.5]).view(1, 3, 1, 1)

    handle = adaptkit.attach_adapter(base, "bsa")  # base frozen; FiLM on bn1, bn2 (bn3 is the output layer)
    latents = nn.Parameter(torch.zeros(25, base.latent_dim))  # one latent per image, as in BSA
    opt = torch.optim.Adam([{"params": handle.parameters(), "lr": 0.05}, {"params": [latents], "lr": 0.05}])
    for step in range(201):
        out = base(latents + 0.01 * torch.randn_like(latents))
        loss = F.l1_loss(out, images) + handle.regularization()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step:3d}  L1 {loss.item():.4f}")

    with tempfile.TemporaryDirectory() as folder:
        adaptkit.save_adapter(handle, folder)
        with torch.no_grad():
            adapted = base(latents)
        torch.manual_seed(0)
        fresh = SmallGenerator().eval()  # "the same pretrained base", loaded again
        reloaded = adaptkit.load_adapter(fresh, folder)
        with torch.no_grad():
            assert torch.equal(fresh(latents), adapted)
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
    print(f"{handle.num_parameters()} adapter parameters ({size:,} bytes on disk) vs "
          f"{sum(p.numel() for p in base.parameters()):,} in the base; reloaded outputs identical")
    handle.detach()
    reloaded.detach()


if __name__ == "__main__":
    main()
