"""Digits32 GAN and Features32 models, their shipped weights, and the scripts that train them."""
from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from click.testing import CliRunner
from safetensors.torch import load_file

from adaptkit.bases import truncated_normal
from adaptkit.bases.digits32_model import (
    WEIGHTS_DIR, ConditionalBatchNorm2d, Digits32Discriminator, Digits32Generator, load_digits32,
)
from adaptkit.bases.features_model import FEATURES_RGB32, Features32, load_features32
from image_tar import CLASSES, write_image_tar

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"training data not found at {DATA}")


def _labels(n: int, num_classes: int = 8) -> torch.Tensor:
    return torch.arange(n) % num_classes


def test_conditional_batchnorm_uses_per_class_tables() -> None:
    cbn = ConditionalBatchNorm2d(4, num_classes=3)
    assert isinstance(cbn.gamma, torch.nn.Embedding) and isinstance(cbn.beta, torch.nn.Embedding)
    assert torch.equal(cbn.gamma.weight, torch.ones(3, 4))
    assert torch.equal(cbn.beta.weight, torch.zeros(3, 4))
    with torch.no_grad():
        cbn.gamma.weight[1] = 2.0
        cbn.beta.weight[1] = 0.5
    x = torch.randn(6, 4, 5, 5)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = cbn(x, y)
    normed = cbn.bn(x)
    torch.testing.assert_close(out[y == 0], normed[y == 0])
    torch.testing.assert_close(out[y == 1], normed[y == 1] * 2 + 0.5)


def test_generator_output_and_attributes() -> None:
    G = Digits32Generator()
    assert (G.latent_dim, G.num_classes, G.resolution, G.channels) == (64, 8, 32, 1)
    assert 300_000 <= sum(p.numel() for p in G.parameters()) <= 600_000
    x = G(torch.randn(5, 64), _labels(5))
    assert x.shape == (5, 1, 32, 32)
    assert x.abs().max() <= 1


def test_generator_blocks_are_class_conditional() -> None:
    G = Digits32Generator().eval()
    with torch.no_grad():
        G.blocks[1].bn2.beta.weight[3] += 1.0
    z = torch.randn(1, 64).repeat(2, 1)
    x = G(z, torch.tensor([0, 3]))
    assert not torch.allclose(x[0], x[1])


def test_discriminator_output_and_projection() -> None:
    D = Digits32Discriminator().eval()
    x = torch.randn(4, 1, 32, 32)
    logits = D(x, _labels(4))
    assert logits.shape == (4,)
    assert not torch.allclose(logits, D(x, _labels(4) + 1))


def test_truncated_normal_stays_within_threshold() -> None:
    z = truncated_normal(64, 16, 0.4, generator=torch.Generator().manual_seed(0))
    assert z.shape == (64, 16)
    assert z.abs().max() <= 0.4
    assert z.std() > 0.1


def test_features_model_shapes() -> None:
    model = Features32(num_classes=12).eval()
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    maps = model.feature_maps(x)
    assert [m.shape for m in maps] == [(3, 24, 32, 32), (3, 48, 16, 16), (3, 96, 8, 8)]
    features = model.features(x)
    assert features.shape == (3, 128) and features.min() >= 0
    assert model(x).shape == (3, 12)


def _shipped(*names: str) -> None:
    """The package ships these weight files: one missing is a packaging regression, a failure."""
    missing = [n for n in names if not (WEIGHTS_DIR / n).is_file()]
    assert not missing, f"shipped weights missing from {WEIGHTS_DIR}: {', '.join(missing)}"


def test_shipped_digits32_weights_load_strictly() -> None:  # load_digits32 loads with strict=True
    _shipped(
        "digits32.json", "digits32_generator.safetensors", "digits32_discriminator.safetensors",
    )
    G, D, meta = load_digits32()
    assert meta["classes"] == [str(d) for d in range(8)]
    for name in ("generator", "discriminator"):
        assert (WEIGHTS_DIR / f"digits32_{name}.safetensors").stat().st_size < 3_000_000
    with torch.no_grad():
        x = G(torch.randn(8, G.latent_dim), _labels(8))
        assert D(x, _labels(8)).shape == (8,)


def test_shipped_features32_weights_load_strictly() -> None:
    _shipped("features32.json", "features32.safetensors")
    model, meta = load_features32()  # strict=True
    assert (WEIGHTS_DIR / "features32.safetensors").stat().st_size < 1_000_000
    assert meta["held_out_accuracy"]["mnist"] > 0.9


def test_shipped_features_rgb32_weights_load_strictly() -> None:
    _shipped("features_rgb32.json", "features_rgb32.safetensors")
    model, meta = load_features32(name=FEATURES_RGB32)  # strict=True
    assert (WEIGHTS_DIR / "features_rgb32.safetensors").stat().st_size < 4_000_000
    assert meta["model"]["in_channels"] == 3 and len(meta["classes"]) == 10
    assert meta["held_out_accuracy"]["cifar10_test"] > 0.8 and meta["held_out_images"]["cifar10_test"] == 10_000


def _cifar10_test_images(per_class: int) -> tuple[torch.Tensor, list[str]]:
    """The first ``per_class`` test images of each class in the shared CIFAR-10 tar (in [-1, 1]), and
    their class names (decoding only these, not the whole tar)."""
    pixels, names = [], []
    with tarfile.open(DATA / "cifar10" / "cifar10-jpg.tar.gz") as archive:
        for member in archive:
            split, *rest = member.name.split("/")
            if member.isfile() and split == "test" and names.count(rest[0]) < per_class:
                pixels.append(np.asarray(Image.open(archive.extractfile(member)).convert("RGB")))
                names.append(rest[0])
    return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 127.5 - 1, names


@pytest.mark.slow
@needs_data
def test_shipped_features_rgb32_classifies_real_photos_deterministically(one_thread) -> None:
    _shipped("features_rgb32.json", "features_rgb32.safetensors")
    model, meta = load_features32(name=FEATURES_RGB32)
    images, names = _cifar10_test_images(per_class=10)
    labels = torch.tensor([meta["classes"].index(n) for n in names])
    with torch.no_grad():
        logits = model(images)
        again = model(images)
        features = model.features(images)
    assert torch.equal(logits, again)
    assert (logits.argmax(1) == labels).float().mean() >= 0.7
    assert features.shape == (100, meta["model"]["feature_dim"]) and (features >= 0).all()


def _shipped_digest() -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in WEIGHTS_DIR.glob("*")}


def _run_script(script: str, *args: str | Path) -> None:
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    subprocess.run([sys.executable, f"examples/{script}", *map(str, args)], cwd=REPO, env=env,
                   check=True, capture_output=True, text=True)


@pytest.mark.slow
@needs_data
def test_pretrain_base_smoke_and_exact_resume(tmp_path: Path) -> None:
    before = _shipped_digest()
    common = ["--export", tmp_path / "w", "--grid", tmp_path / "grid.png", "--log-every", 1]
    _run_script("pretrain_base.py", "--steps", 3, "--out", tmp_path / "straight", *common)
    _run_script("pretrain_base.py", "--steps", 2, "--out", tmp_path / "resumed", *common)
    _run_script("pretrain_base.py", "--steps", 3, "--out", tmp_path / "resumed", "--resume",
                *common)
    straight = load_file(tmp_path / "straight" / "checkpoint.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoint.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    G, D, meta = load_digits32(tmp_path / "w")
    assert meta["training"]["steps"] == 3 and len(meta["commands"]) == 2
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert _shipped_digest() == before


@pytest.mark.slow
@needs_data
def test_train_features_smoke(tmp_path: Path) -> None:
    before = _shipped_digest()
    _run_script("train_features.py", "--steps", 2, "--out", tmp_path / "run", "--export", tmp_path)
    model, meta = load_features32(tmp_path)
    assert meta["model"]["num_classes"] == 10 + 136
    assert meta["held_out_images"] == {"mnist": 2000, "omniglot": 544}
    assert _shipped_digest() == before


def test_train_features_cifar10_smoke_and_exact_resume(tmp_path: Path, monkeypatch, one_thread) -> None:
    """In-process (the imports are paid once), on a tiny synthetic tar: no data needed."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    script = importlib.import_module("train_features")

    def run(*args: str | Path | int) -> None:
        with torch.random.fork_rng():
            result = CliRunner().invoke(script.main, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    before = _shipped_digest()
    write_image_tar(tmp_path / "cifar.tar.gz", {"train": 4, "test": 2})
    common = ["--dataset", "cifar10", "--cifar10", tmp_path / "cifar.tar.gz", "--steps", 3,
              "--batch-size", 4, "--log-every", 1]
    run(*common, "--out", tmp_path / "straight", "--export", tmp_path / "w")
    run(*common, "--out", tmp_path / "resumed", "--export", tmp_path / "w2", "--stop-at", 2)
    assert not (tmp_path / "w2").exists()
    run(*common, "--out", tmp_path / "resumed", "--export", tmp_path / "w2", "--resume")
    straight = load_file(tmp_path / "straight" / "checkpoint.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoint.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert load_file(tmp_path / "w" / f"{FEATURES_RGB32}.safetensors").keys() == \
        load_file(tmp_path / "w2" / f"{FEATURES_RGB32}.safetensors").keys()
    model, meta = load_features32(tmp_path / "w2", name=FEATURES_RGB32)
    assert meta["model"]["in_channels"] == 3 and meta["classes"] == sorted(CLASSES)
    assert meta["held_out_images"] == {"cifar10_test": 6} and meta["training"]["steps"] == 3
    assert 0 <= meta["held_out_accuracy"]["cifar10_test"] <= 1 and len(meta["commands"]) == 2
    assert set(meta["data"]["md5"]) == {"cifar.tar.gz"}
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert _shipped_digest() == before
