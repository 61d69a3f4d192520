"""The BigGAN-deep bases: registered, built from a config with random weights; never downloaded."""
import json

import pytest
import torch
import torch.nn.functional as F

from adaptkit import AdaptkitError, attach_adapter, sample_images
from adaptkit.bases import list_bases, load_base
from adaptkit.bases import biggan
from adaptkit.core import adapter_class
from models import small_biggan_config


@pytest.fixture(scope="module")
def base():
    return biggan.biggan_from_config(small_biggan_config())


def test_registered():
    rows = {r.name: r for r in list_bases()}
    for size in (128, 256, 512):
        row = rows[f"biggan-deep-{size}"]
        assert row.value == f"adaptkit.bases.biggan:biggan_deep_{size}" and row.error is None
        assert row.distribution == "adaptkit"


def test_built_from_config(base):
    assert (base.latent_dim, base.num_classes, base.resolution, base.channels) == (16, 1000, 16, 3)
    assert base.class_names[207] == "golden retriever" and base.class_id("golden retriever") == 207
    assert base.call.latent == 0 and base.call.labels == 1 and base.call.num_classes == 1000
    z = base.sample_latents(2, 0.4, torch.Generator().manual_seed(0))
    y = torch.tensor([3, 207])
    with torch.no_grad():
        out = base.generate(z, y)
        direct = base.generator(z, F.one_hot(y, 1000).float(), biggan.BN_TRUNCATION)
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all() and out.std() > 1e-3
    assert torch.equal(out, direct)
    images = sample_images(base, 2, class_id="golden retriever", seed=1)
    assert torch.equal(images, sample_images(base, 2, class_id=207, seed=1))


def test_bsa_defaults(base):
    paths = [n for n, m in base.generator.named_modules() if type(m).__name__ == "BigGANBatchNorm"]
    handle = attach_adapter(base.generator, "bsa")  # the plain default: the conditional BNs
    assert handle.targets == [p for p in paths if p != "generator.bn"] and len(handle.targets) == 16
    handle.detach()
    targets = base.adapter_options("bsa")["targets"]
    assert targets == ["generator.gen_z", *handle.targets]
    assert base.adapter_options("pwgconv") == {}  # the latent projection means nothing to pwgconv
    handle = attach_adapter(base.generator, "bsa", **base.adapter_options("bsa"))
    assert handle.targets == targets  # the latent projection, not the class `embeddings` linear
    handle.detach()
    handle = attach_adapter(base.generator, "bsa", train_conditional=True, **base.adapter_options("bsa"))
    assert not len(handle.adapter_for("generator.gen_z").deltas)  # plain γ/β on the linear layer
    assert len(handle.adapter_for("generator.layers.0.bn_0").deltas) == 2  # scale and offset linears
    handle.detach()


def test_default_config_has_40_conditional_bns():
    model = biggan.BigGAN(biggan.BigGANConfig(channel_width=4, num_classes=10))
    targets = adapter_class("bsa").base_options(model, {"latent_projection": biggan.LATENT_PROJECTION})["targets"]
    assert len(targets) == 41 and targets[0] == "generator.gen_z" and "generator.bn" not in targets


def test_random_weights_are_seeded():
    a = biggan.biggan_from_config(small_biggan_config(), seed=1).generator.state_dict()
    b = biggan.biggan_from_config(small_biggan_config(), seed=1).generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_missing_weights_give_a_clear_error(tmp_path, monkeypatch):
    def offline(url, cache_dir=None):
        raise OSError(f"HEAD request failed for url {url}")

    monkeypatch.setattr(biggan.biggan_files, "cached_path", offline)
    monkeypatch.setattr(biggan.biggan_files, "PYTORCH_PRETRAINED_BIGGAN_CACHE", tmp_path / "cache")
    with pytest.raises(AdaptkitError, match=r"could not download or find the biggan-deep-128 weights \(OSError: "
                                            r"HEAD request failed.*connect once to download them into .*cache"):
        load_base("biggan-deep-128")
    with pytest.raises(AdaptkitError, match="has no config.json and pytorch_model.bin"):
        biggan.load_pretrained(str(tmp_path))


def test_weights_found_in_the_package_cache_without_network(tmp_path, monkeypatch):
    """A cache filled by an earlier download is used as is (the package itself always asks the network)."""
    monkeypatch.setattr(biggan.biggan_files, "cached_path", lambda *a, **k: pytest.fail("network used"))
    config = small_biggan_config()
    model = biggan.biggan_from_config(config, seed=4).generator
    cache = tmp_path / "cache"
    cache.mkdir()
    for tag, url in (("c", biggan.PRETRAINED_CONFIG_ARCHIVE_MAP["biggan-deep-256"]),
                     ("w", biggan.PRETRAINED_MODEL_ARCHIVE_MAP["biggan-deep-256"])):
        (cache / f"{tag}.json").write_text(json.dumps({"url": url, "etag": None}))
    (cache / "c").write_text(json.dumps(config.__dict__))
    torch.save(model.state_dict(), cache / "w")
    loaded = biggan.load_pretrained("biggan-deep-256", cache_dir=cache)
    assert loaded.id == "biggan-deep-256" and loaded.resolution == 16
    z, y = torch.zeros(1, 16), torch.tensor([5])
    with torch.no_grad():
        assert torch.equal(loaded.generate(z, y), biggan.biggan_from_config(config, seed=4).generate(z, y))
