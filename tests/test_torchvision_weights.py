"""One weights policy for training and evaluation: a network asked for by name is downloaded into
torchvision's cache once; ``auto`` never downloads."""
import pytest
import torch

from adaptkit.bases import wrap_generator
from adaptkit.errors import WeightsNotFoundError
from adaptkit.eval.diversity import load_perceptual_distance
from adaptkit.eval.features import load_embedded_extractor, load_feature_extractor
from adaptkit.torchvision_weights import URLS, cached_weights_path, is_cached, load_weights
from adaptkit.train.perceptual import build_perceptual, resolve_perceptual
from models import tiny_cond_generator


@pytest.fixture
def downloads(tmp_path, monkeypatch):
    """An empty cache; every download is recorded and fails (no network)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    asked: list[str] = []

    def download(url, dst, progress=True):
        asked.append(url)
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    return asked


def test_auto_never_downloads(downloads):
    base = wrap_generator("cond", tiny_cond_generator())
    assert resolve_perceptual("auto", base) == "rgb32"
    extractor, note = load_feature_extractor("auto", channels=3)
    assert "used the embedded extractor" in note
    distance = load_perceptual_distance("auto", extractor, fallback=load_embedded_extractor)
    assert "feature maps" in distance.name
    assert downloads == []


@pytest.mark.parametrize("ask, kind", [
    (lambda: build_perceptual("vgg16", wrap_generator("cond", tiny_cond_generator())), "vgg16"),
    (lambda: build_perceptual("lpips", wrap_generator("cond", tiny_cond_generator())), "alexnet"),
    (lambda: load_feature_extractor("inception"), "inception_v3"),
    (lambda: load_perceptual_distance("lpips", load_embedded_extractor(), fallback=load_embedded_extractor),
     "alexnet"),
])
def test_training_and_eval_download_what_is_asked_for_by_name(downloads, ask, kind):
    with pytest.raises(WeightsNotFoundError, match=rf"needs {kind} weights: not in the cache and the download failed "
                                                   rf"\(OSError: network unreachable\); put torchvision's"):
        ask()
    assert downloads == [URLS[kind]]


def test_a_download_lands_in_the_cache_once(downloads, monkeypatch):
    calls = []

    def download(url, dst, progress=True):
        calls.append(url)
        torch.save({"w": torch.ones(2)}, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    assert not is_cached("vgg16")
    for _ in range(2):
        assert torch.equal(load_weights("vgg16", needed_by="test", instead="none")["w"], torch.ones(2))
    assert calls == [URLS["vgg16"]] and is_cached("vgg16") and cached_weights_path("vgg16").is_file()
