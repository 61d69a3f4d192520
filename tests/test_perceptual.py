"""Perceptual losses: weight loading and its clear errors, VGG16 layers, LPIPS trunk, caching."""
import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from adaptkit.bases import wrap_generator
from adaptkit.bases.features_model import Features32
from adaptkit.errors import ConfigError, WeightsNotFoundError
from adaptkit.train import perceptual
from adaptkit.train.perceptual import (
    DEFAULT_WEIGHTS, FeatureL1Loss, LpipsLoss, Vgg16Features, base_features, build_perceptual,
    load_imagenet_weights, resolve_perceptual,
)
from adaptkit.torchvision_weights import cached_weights_path
from fit_bases import tiny_cond_base
from models import tiny_cond_generator


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch cache and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, dst, progress=True):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path


@pytest.mark.parametrize("choice, kind", [("vgg16", "vgg16"), ("lpips", "alexnet")])
def test_missing_weights_name_the_alternatives(offline, choice, kind):
    base = wrap_generator("cond", tiny_cond_generator())
    with pytest.raises(WeightsNotFoundError) as info:
        build_perceptual(choice, base)
    message = str(info.value)
    assert "\n" not in message and f"perceptual={choice!r} needs {kind} weights" in message
    assert str(cached_weights_path(kind)).startswith(str(offline / "torch"))
    assert "download failed (OSError: network unreachable)" in message
    assert "pass a weights file as perceptual_file" in message
    assert "perceptual='rgb32' / perceptual='base' / perceptual='none'" in message and "--" not in message
    with pytest.raises(WeightsNotFoundError, match="nowhere.pth does not exist"):
        build_perceptual(choice, base, str(offline / "nowhere.pth"))


def test_weights_are_read_from_a_file_or_the_cache_without_unpickling_code(offline):
    weights = {"features.0.weight": torch.randn(2, 3)}
    save_file(weights, str(offline / "w.safetensors"))
    assert torch.equal(load_imagenet_weights("vgg16", "vgg16", str(offline / "w.safetensors"))["features.0.weight"],
                       weights["features.0.weight"])
    cached = cached_weights_path("vgg16")
    cached.parent.mkdir(parents=True)
    torch.save(weights, cached)
    assert torch.equal(load_imagenet_weights("vgg16", "vgg16")["features.0.weight"], weights["features.0.weight"])
    torch.save({"evil": object()}, cached)  # not plain tensors: refused by weights_only loading
    with pytest.raises(WeightsNotFoundError, match="cannot read weights from .*vgg16"):
        load_imagenet_weights("vgg16", "vgg16")


def test_auto_picks_the_base_network_then_cached_vgg_then_rgb32_then_none(offline):
    plain = wrap_generator("cond", tiny_cond_generator())
    gray = dataclasses.replace(plain, channels=1)
    assert plain.channels == 3
    assert resolve_perceptual("auto", tiny_cond_base()) == "base"
    assert resolve_perceptual("auto", plain) == "rgb32"
    assert resolve_perceptual("auto", gray) == "none"
    cached_weights_path("vgg16").parent.mkdir(parents=True)
    cached_weights_path("vgg16").write_bytes(b"")
    assert resolve_perceptual("auto", plain) == "vgg16" and resolve_perceptual("auto", gray) == "vgg16"
    assert resolve_perceptual("auto", tiny_cond_base()) == "base"
    assert resolve_perceptual("lpips", plain) == "lpips"
    with pytest.raises(ConfigError, match="provides no feature network: choose another perceptual \\(rgb32"):
        build_perceptual("base", plain)


def test_rgb32_is_the_embedded_network_at_the_base_resolution(one_thread):
    loss = build_perceptual("rgb32", wrap_generator("cond", tiny_cond_generator()))
    assert loss.name == "rgb32" and DEFAULT_WEIGHTS["rgb32"] == 1.0
    assert isinstance(loss.network, Features32) and loss.network.stages[0][0].in_channels == 3
    assert not loss.network.training and not any(p.requires_grad for p in loss.network.parameters())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    maps = loss.features(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(48, 64, 64), (96, 32, 32), (192, 16, 16)]
    loss.prepare(x)
    assert loss(x[:2], torch.tensor([0, 1])).item() == 0
    assert loss(x[:2], torch.tensor([1, 2])).item() > 0
    gray = x[:, :1]
    assert all(torch.equal(a, b) for a, b in zip(loss.features(gray), loss.features(gray.expand(-1, 3, -1, -1))))


def test_vgg16_features_are_the_ten_conv_relus():
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    full = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    net = Vgg16Features({**full, "classifier.0.weight": torch.zeros(1)})  # torchvision's layout
    assert torch.equal(net.features[21].weight, full["features.21.weight"])
    maps = net(torch.rand(2, 1, 16, 16) * 2 - 1)
    assert [m.shape[1] for m in maps] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    assert all((m >= 0).all() for m in maps) and not any(p.requires_grad for p in net.parameters())


ALEXNET_CONVS = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}


def test_lpips_uses_the_given_alexnet_trunk():
    torch.manual_seed(0)
    state = {}
    for index, shape in ALEXNET_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(shape) * 0.05
        state[f"features.{index}.bias"] = torch.randn(shape[0]) * 0.05
    loss = LpipsLoss(state)
    assert torch.equal(loss.lpips.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(dict(loss.lpips.net.slice5.named_children())["10"].bias, state["features.10.bias"])
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    loss.prepare(x)
    assert loss(x[:2], torch.tensor([0, 1])).item() == pytest.approx(0, abs=1e-6)
    assert loss(x[:2], torch.tensor([2, 3])).item() > 0


def test_cached_and_recomputed_targets_agree(monkeypatch):
    base = tiny_cond_base()
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    fake = torch.rand(3, 3, 16, 16) * 2 - 1
    index = torch.tensor([4, 0, 2])
    cached = FeatureL1Loss("base", base_features(base))
    cached.prepare(x)
    monkeypatch.setattr(perceptual, "CACHE_BYTES", 0)
    recomputed = FeatureL1Loss("base", base_features(base))
    recomputed.prepare(x)
    assert cached.cache is not None and recomputed.cache is None
    assert torch.equal(cached(fake, index), recomputed(fake, index))
    expected = sum((f - r).abs().mean() for f, r in zip(base.feature_network.feature_maps(fake),
                                                         base.feature_network.feature_maps(x[index])))
    assert torch.allclose(cached(fake, index), expected)
