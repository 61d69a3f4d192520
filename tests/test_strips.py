"""Interpolation and morphing strips of run folders: exact ends, refusal of incompatible adapters."""
import json

import pytest
import torch

from adaptkit import load_adapter
from adaptkit.bases import load_base
from adaptkit.core import attached_adapters
from adaptkit.errors import IncompatibleAdaptersError, InvalidValueError
from adaptkit.io.run_dir import load_run
from adaptkit.morph import lerp_tensors, morph_runs
from adaptkit.sample import generate_images, interpolate_run
from runs import TINY_COND, make_run


@pytest.fixture
def run_a(tmp_path):
    return make_run(tmp_path / "a", 1, count=4, labels=[0, 1, 2, 1])


@pytest.fixture
def run_b(tmp_path):
    return make_run(tmp_path / "b", 2, count=2, labels=[3, 3])


def reconstructions(folder, index):
    run = load_run(folder)
    return generate_images(run.base, run.latents[index], run.labels[index])


def test_interpolation_ends_are_the_reconstructions(run_a):
    run = load_run(run_a)
    strips = interpolate_run(run, steps=5)
    assert strips.shape == (3, 5, 3, 16, 16)  # pairs 0→1, 1→2, 2→3
    assert torch.equal(strips[:, 0], reconstructions(run_a, [0, 1, 2]))
    assert torch.equal(strips[:, -1], reconstructions(run_a, [1, 2, 3]))
    middle = interpolate_run(run, steps=3, pairs=[(0, 3)])[0, 1]
    z = (run.latents[0] + run.latents[3]) / 2
    assert torch.allclose(middle, generate_images(run.base, z[None], run.labels[3:4])[0], atol=1e-5)


def test_interpolation_pairs_classes_and_random(run_a):
    run = load_run(run_a)
    strips = interpolate_run(run, steps=4, pairs=[(3, 0)], class_id=2)
    assert torch.equal(strips[0, 0], generate_images(run.base, run.latents[3:4], torch.tensor([2]))[0])
    random = interpolate_run(run, steps=4, rows=2, random=True, seed=5)
    assert random.shape == (2, 4, 3, 16, 16)
    assert torch.equal(random, interpolate_run(run, steps=4, rows=2, random=True, seed=5))
    with pytest.raises(InvalidValueError, match="latent 7 does not exist: the run has 4"):
        interpolate_run(run, pairs=[(0, 7)])
    with pytest.raises(InvalidValueError, match="at least 2 steps"):
        interpolate_run(run, steps=1)


def test_interpolation_needs_two_learned_latents(tmp_path):
    run = load_run(make_run(tmp_path / "one", 0, count=1))
    with pytest.raises(InvalidValueError, match="needs at least 2"):
        interpolate_run(run)
    run = load_run(make_run(tmp_path / "none", 0, latents=False))
    with pytest.raises(InvalidValueError, match="no learned latents.*\\(random\\)"):
        interpolate_run(run)


def test_morph_ends_are_each_adapters_own_output(run_a, run_b):
    strips = morph_runs(run_a, run_b, steps=4, rows=4)
    assert strips.shape == (4, 4, 3, 16, 16)
    a, b = load_run(run_a), load_run(run_b)
    own_a = generate_images(a.base, a.latents, a.labels)
    own_b = generate_images(b.base, b.latents[[0, 1, 0, 1]], b.labels[[0, 1, 0, 1]])
    assert torch.equal(strips[:, 0], own_a) and torch.equal(strips[:, -1], own_b)
    assert not torch.allclose(strips[:, 1], own_a, atol=1e-3)


def test_morph_random_latents_same_at_both_ends(run_a, run_b):
    base = load_base(TINY_COND)
    strips = morph_runs(run_a, run_b, steps=3, rows=2, random=True, seed=9, class_id=1, base=base)
    assert not attached_adapters(base.generator)  # A's adapter was taken off again
    z = base.sample_latents(2, 0.4, torch.Generator().manual_seed(9))
    y = torch.tensor([1, 1])
    for folder, column in ((run_a, 0), (run_b, -1)):
        handle = load_adapter(base.generator, folder)
        assert torch.equal(strips[:, column], generate_images(base, z, y))
        handle.detach()


def test_lerp_tensors_exact_ends():
    a, b = {"w": torch.tensor([0.1, 0.7])}, {"w": torch.tensor([0.3, -0.2])}
    assert lerp_tensors(a, b, 0)["w"] is a["w"] and lerp_tensors(a, b, 1)["w"] is b["w"]
    assert torch.allclose(lerp_tensors(a, b, 0.25)["w"], 0.75 * a["w"] + 0.25 * b["w"])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"base_id": "python:models:tiny_generator"}, r"different bases \(python:models:tiny_cond_generator vs python:models:tiny_generator\)"),
        ({"adapt_first_linear": True}, r"different targets \(only in a: -; only in c: \['linear'\]\)"),
        ({"train_conditional": True}, r"different adapter options \(train_conditional: False vs True\)"),
        ({"targets": ["block1.bn1"]}, r"different targets \(only in a: \['block1.bn2', 'block2.bn1', 'block2.bn2'\]"),
    ],
)
def test_morph_refuses_incompatible_adapters(tmp_path, run_a, options, message):
    other = make_run(tmp_path / "c", 3, **options)
    with pytest.raises(IncompatibleAdaptersError, match=f"cannot morph a into c: {message}"):
        morph_runs(run_a, other)


def test_morph_refuses_other_adapter_type(tmp_path, run_a):
    other = make_run(tmp_path / "c", 3)
    config = json.loads((other / "adapter_config.json").read_text())
    config["adapter"] = "pwg"
    (other / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleAdaptersError, match=r"different adapter types \(bsa vs pwg\)"):
        morph_runs(run_a, other)


def test_morph_random_draws_the_classes_run_a_trained_on(tmp_path, monkeypatch):
    import adaptkit.morph as morph

    a = make_run(tmp_path / "a", 0, labels=[3, 3, 3])
    b = make_run(tmp_path / "b", 1, labels=[1, 1, 1])
    seen = []
    monkeypatch.setattr(morph, "morph_images", lambda base, handle, ta, tb, ends, steps, **kw: seen.append(ends))
    morph_runs(a, b, steps=3, rows=6, random=True, seed=4)
    assert seen[0].y_a.tolist() == seen[0].y_b.tolist() == [3] * 6
    morph_runs(a, b, steps=3, rows=6, random=True, seed=4, class_id=2)
    assert seen[1].y_a.tolist() == [2] * 6
