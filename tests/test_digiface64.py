"""The digiface64 base: the gan-face-generate wheel's DCGAN, loaded offline, and base-declared truncation."""
from importlib import metadata

import pytest
import torch

from adaptkit.bases import digiface64 as face
from adaptkit.bases import base_sizes, load_base, wrap_generator
from adaptkit.errors import InvalidValueError, WeightsNotFoundError
from adaptkit.sample import random_latents
from clitools import invoke, one_line_error
from models import tiny_generator

SHA256_1_1_1 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"


def wheel_installed() -> bool:
    try:
        metadata.distribution(face.DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_wheel = pytest.mark.skipif(not wheel_installed(), reason=f"needs {face.INSTALL} (.ci/run installs it)")


@needs_wheel
def test_loads_offline_and_is_bitwise_deterministic():
    a, b = load_base("digiface64"), load_base("digiface64")
    assert (a.resolution, a.channels, a.latent_dim, a.conditional, a.truncation) == (64, 3, 100, False, None)
    assert a.revision.startswith("gan-face-generate==")
    if a.revision == "gan-face-generate==1.1.1":
        assert a.info["weights_sha256"] == SHA256_1_1_1
    z = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x, y = a.generate(z), b.generate(z)
    assert x.shape == (3, 3, 64, 64) and torch.equal(x, y)
    assert x.abs().max() <= 1 and x.std(0).mean() > 0.1  # distinct faces, not one mean image
    assert not any(p.requires_grad for p in a.generator.parameters())


@needs_wheel
def test_untruncated_samples_by_default():
    base = load_base("digiface64")
    z, _ = random_latents(base, 50, seed=0)
    assert z.abs().max() > 2  # N(0, I), not truncated at 0.4
    z, _ = random_latents(base, 50, seed=0, truncation=0.4)
    assert z.abs().max() <= 0.4


def test_missing_wheel_is_one_clear_line(monkeypatch, tmp_path):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(face.metadata, "distribution", missing)
    with pytest.raises(WeightsNotFoundError, match="pip install --no-deps gan-face-generate"):
        face.digiface64()
    result = invoke("fit", "--base", "digiface64", "--data", tmp_path, "--out", tmp_path / "run")
    one_line_error(result, "pip install --no-deps gan-face-generate")


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "weights.tar"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(WeightsNotFoundError, match="cannot read the DCGAN weights"):
        face.load_dcgan64(bad)


def test_dcgan_matches_the_tutorial_layout():
    model = face.DCGAN64()
    names = [n for n, _ in model.state_dict().items() if n.endswith("weight")]
    assert names[0] == "main.0.weight" and names[-1] == "main.12.weight"
    assert model(torch.zeros(2, 100)).shape == (2, 3, 64, 64)


def test_base_declares_its_truncation():
    base = wrap_generator("plain", tiny_generator())
    assert base.resolve_truncation() == 0.4  # the papers' default
    base.truncation = None
    assert base.resolve_truncation("base") is None and base.resolve_truncation("none") is None
    assert base.resolve_truncation(0.7) == 0.7 and base.resolve_truncation("0.5") == 0.5
    for bad in (0, -1, "x"):
        with pytest.raises(InvalidValueError, match="truncation must be a positive number"):
            base.resolve_truncation(bad)


@pytest.mark.parametrize("name", ["digits32", pytest.param("digiface64", marks=needs_wheel)])
def test_declared_sizes_match_the_loaded_base(name):
    sizes, base = base_sizes(name), load_base(name)
    assert (sizes.resolution, sizes.channels, sizes.latent_dim, sizes.num_classes) == (
        base.resolution, base.channels, base.latent_dim, base.num_classes)


def test_bases_lists_what_each_base_makes(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke("bases")
    assert result.exit_code == 0
    assert "64×64 RGB, z 100" in result.output and "32×32 gray, z 64, 8 classes" in result.output
