"""Latent initialisation by search, and classes for images in no class folder on a conditional base."""
import json

import pytest
import torch
from torch import nn

from adaptkit.bases import Base, load_base
from adaptkit.core.context import CallSpec
from adaptkit.data import load_image_folder
from adaptkit.io.run_dir import load_run
from adaptkit.train import FitConfig, fit
from adaptkit.train.latent_search import search_latents
from imagefolder import blob_images, write_images

pytestmark = pytest.mark.usefixtures("one_thread")
COLOURS = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]])


class ColourGenerator(nn.Module):
    """Class c paints a flat colour; the latent adds a faint gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.05))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(-1, 1, 8).view(1, 1, 1, 8)
        return (COLOURS[y][:, :, None, None] * 0.8 + self.scale * z[:, :1, None, None] * ramp).expand(-1, 3, 8, 8)


def colour_base() -> Base:
    return Base(id="colours", generator=ColourGenerator(), latent_dim=4, resolution=8, channels=3, num_classes=4,
                call=CallSpec(latent=0, labels=1, latent_dim=4, num_classes=4))


def l1(images):
    return lambda fake, index: (fake - images[index]).abs().flatten(1).mean(1)


def test_search_gives_latents_nearer_than_zero_and_than_one_draw(tmp_path):
    base = load_base("python:models:tiny_cond_generator")
    images = base.generate(torch.randn(12, 16, generator=torch.Generator().manual_seed(5)),
                           torch.ones(12, dtype=torch.long)).detach()
    labels = torch.ones(12, dtype=torch.long)
    dist = l1(images)
    zero = dist(base.generate(torch.zeros(12, 16), labels), torch.arange(12)).mean()
    one, _ = search_latents(base, 12, labels, dist, candidates=1, rng=torch.Generator().manual_seed(0))
    many, kept = search_latents(base, 12, labels, dist, candidates=64, rng=torch.Generator().manual_seed(0))
    assert torch.equal(kept, labels)
    searched = dist(base.generate(many, labels), torch.arange(12)).mean()
    assert searched < dist(base.generate(one, labels), torch.arange(12)).mean() and searched < zero
    again, _ = search_latents(base, 12, labels, dist, candidates=64, rng=torch.Generator().manual_seed(0))
    assert torch.equal(many, again)


def test_search_finds_the_class_of_images_without_one():
    base = colour_base()
    truth = torch.tensor([0, 3, 2, 1, 3, 0])
    images = base.generate(torch.randn(6, 4), truth).detach()
    given = torch.tensor([-1, -1, -1, 1, -1, 2])  # known labels are kept, even a wrong one
    _, found = search_latents(base, 6, given, l1(images), candidates=8, rng=torch.Generator().manual_seed(1))
    assert found.tolist() == [0, 3, 2, 1, 3, 2]


def test_fit_on_a_flat_folder_of_a_conditional_base(tmp_path):
    data = tmp_path / "flat"
    write_images(data, blob_images(10))
    assert all(f is None for f in load_image_folder(data, channels=3, resolution=16).folders)
    out = fit(FitConfig(data=str(data), out=str(tmp_path / "run"), base="python:models:tiny_cond_generator",
                        perceptual="none", steps=4, samples=4, quiet=True))
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["searched_classes"].values()) == 10
    run = load_run(out)
    assert run.labels.min() >= 0 and run.labels.max() < 4


def test_glo_latents_start_at_the_search_unless_zero(tmp_path):
    data = tmp_path / "blobs"
    write_images(data, blob_images(6))
    settings = dict(data=str(data), base="python:models:tiny_cond_generator", class_id="1", perceptual="none",
                    steps=1, samples=4, quiet=True, lr_latent=1e-12, noise_std=0.0, latent_weight=0.0)
    searched = load_run(fit(FitConfig(out=str(tmp_path / "a"), **settings))).latents
    zero = load_run(fit(FitConfig(out=str(tmp_path / "b"), latent_search=0, **settings))).latents
    assert zero.abs().max() < 1e-9 and searched.std() > 0.5
