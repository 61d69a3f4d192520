"""Sampling, class selection, latent interpolation and image files."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from adaptkit import attach_adapter
from adaptkit.bases import load_base
from adaptkit.errors import InvalidValueError, UnknownClassError
from adaptkit.images import save_gif, save_grid, save_images, to_uint8
from adaptkit.sample import generate_images, interpolate_latents, random_latents, sample_images


@pytest.fixture
def cond_base():
    return load_base("python:models:tiny_cond_generator")


@pytest.fixture
def uncond_base():
    return load_base("python:models:tiny_generator")


def test_same_seed_same_images(cond_base):
    a = sample_images(cond_base, 5, seed=3)
    b = sample_images(cond_base, 5, seed=3, batch_size=2)  # batching does not change the draw
    c = sample_images(cond_base, 5, seed=4)
    assert a.shape == (5, 3, 16, 16) and a.device.type == "cpu"
    assert torch.equal(a, sample_images(cond_base, 5, seed=3))
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-2)
    assert a.min() >= -1 and a.max() <= 1


def test_latents_truncated_and_classes_random_but_seeded(cond_base):
    z, y = random_latents(cond_base, 200, truncation=0.4, seed=1)
    z2, y2 = random_latents(cond_base, 200, truncation=0.4, seed=1)
    assert z.abs().max() <= 0.4 and torch.equal(z, z2) and torch.equal(y, y2)
    assert set(y.tolist()) == {0, 1, 2, 3}
    z, _ = random_latents(cond_base, 200, truncation=None, seed=1)
    assert z.abs().max() > 1


def test_class_by_id_and_by_name(cond_base):
    named = dataclasses.replace(cond_base, class_names=["cat", "dog", "fox", "owl"])
    by_id = sample_images(named, 3, class_id=2, seed=0)
    assert torch.equal(sample_images(named, 3, class_id="fox", seed=0), by_id)
    assert torch.equal(sample_images(named, 3, class_id="2", seed=0), by_id)
    assert random_latents(named, 3, class_id="dog")[1].tolist() == [1, 1, 1]
    z, _ = random_latents(named, 3, seed=0)
    assert torch.equal(generate_images(named, z, torch.full((3,), 2)), by_id)
    with pytest.raises(UnknownClassError, match="unknown class 'zebra'.*cat, dog, fox, owl"):
        sample_images(named, 1, class_id="zebra")
    with pytest.raises(UnknownClassError, match="class 4 is out of range"):
        sample_images(named, 1, class_id=4)


def test_unconditional(uncond_base):
    assert random_latents(uncond_base, 2, seed=0)[1] is None
    assert sample_images(uncond_base, 2, seed=0).shape == (2, 3, 16, 16)
    with pytest.raises(UnknownClassError, match="unconditional"):
        sample_images(uncond_base, 2, class_id=1)


@pytest.mark.parametrize("kw", [{"n": 0}, {"n": -1}, {"n": 2, "truncation": 0.0}, {"n": 2, "batch_size": 0}])
def test_bad_values(cond_base, kw):
    with pytest.raises(InvalidValueError, match="must be (a )?positive"):
        sample_images(cond_base, **kw)


def test_adapter_changes_samples_and_mode_is_restored(cond_base):
    before = sample_images(cond_base, 2, seed=0)
    handle = attach_adapter(cond_base.generator, "bsa")
    with torch.no_grad():
        handle.adapters["block1/bn1"].beta.fill_(0.5)
    cond_base.generator.train()
    cond_base.generator.bn.eval()
    assert not torch.equal(sample_images(cond_base, 2, seed=0), before)
    assert cond_base.generator.training and not cond_base.generator.bn.training
    with handle.enabled(False):
        assert torch.equal(sample_images(cond_base, 2, seed=0), before)


def test_interpolate_latents_is_linear_with_exact_ends():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 7, generator=g), torch.randn(2, 7, generator=g)
    path = interpolate_latents(a, b, 5)
    assert path.shape == (5, 2, 7)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], (a + b) / 2)
    assert torch.allclose(path[1:] - path[:-1], ((b - a) / 4).expand(4, 2, 7), atol=1e-6)
    with pytest.raises(InvalidValueError, match="at least 2 steps"):
        interpolate_latents(a, b, 1)
    with pytest.raises(InvalidValueError, match="shapes"):
        interpolate_latents(a, b[:1], 3)


def test_save_grid_rgb_and_gray(tmp_path):
    images = torch.linspace(-1, 1, 5 * 3 * 4 * 4).view(5, 3, 4, 4)
    path = save_grid(images, tmp_path / "sub" / "grid.png", nrow=3, padding=1)
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (3 * 5 + 1, 2 * 5 + 1)
        px = np.asarray(im)
    assert px[1:5, 1:5].tolist() == to_uint8(images[0]).permute(1, 2, 0).tolist()
    assert px[1:5, 6:10].tolist() == to_uint8(images[1]).permute(1, 2, 0).tolist()
    assert px[0, 0].tolist() == [0, 0, 0] and (px[6:10, 11:] == 0).all()  # black padding, empty cell
    gray = save_grid(torch.ones(2, 1, 4, 4), tmp_path / "gray.png")
    with Image.open(gray) as im:
        assert im.mode == "L" and np.asarray(im)[2, 2] == 255
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "sub"]  # no temp files left


def test_save_grid_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="expected a non-empty batch"):
        save_grid(torch.zeros(2, 4, 4, 4), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_save_images_and_gif(tmp_path):
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    paths = save_images(images, tmp_path / "each", prefix="s_")
    assert [p.name for p in paths] == ["s_0000.png", "s_0001.png", "s_0002.png"]
    with Image.open(paths[1]) as im:
        expected = ((images[1].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
        assert np.array_equal(np.asarray(im), expected.astype(np.uint8))
    gif = save_gif(images, tmp_path / "a.gif")
    with Image.open(gif) as im:
        assert im.is_animated and im.n_frames == 4  # 0 1 2 1, then loops
