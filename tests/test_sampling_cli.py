"""`adaptkit sample / interpolate / morph / bases`: files written, and one-line errors."""
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from adaptkit.bases import load_base
from adaptkit.errors import InvalidCheckpointError
from adaptkit.images import to_uint8
from adaptkit.io.run_dir import load_run
from adaptkit.sample import sample_images, sample_run
from clitools import invoke, one_line_error
from runs import TINY_COND, make_run

CPU = ["--device", "cpu"]


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "run", 1, count=3)


def test_sample_grid_matches_library(run_dir):
    result = invoke("sample", run_dir, "-n", 4, "--seed", 7, "--class", 2, *CPU)
    assert result.exit_code == 0, result.output
    assert f"wrote {run_dir / 'samples_7.png'} (4 images, seed 7)" in result.output
    adapted = sample_images(load_run(run_dir).base, 4, class_id=2, seed=7, batch_size=32)
    with Image.open(run_dir / "samples_7.png") as im:
        assert im.size == (2 * 18 + 2, 2 * 18 + 2)
        px = np.asarray(im)
    assert px[2:18, 2:18].tolist() == to_uint8(adapted[0]).permute(1, 2, 0).tolist()
    assert px[20:36, 20:36].tolist() == to_uint8(adapted[3]).permute(1, 2, 0).tolist()


def test_sample_each_and_out(run_dir, tmp_path):
    result = invoke("sample", run_dir, "-n", 3, "--each", "--out", tmp_path / "imgs", *CPU)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    result = invoke("sample", run_dir, "-n", 2, "--out", tmp_path / "x.png", "--base", TINY_COND, *CPU)
    assert result.exit_code == 0 and (tmp_path / "x.png").is_file()


def test_interpolate_and_gif(run_dir):
    result = invoke("interpolate", run_dir, "--steps", 5, "--gif", *CPU)
    assert result.exit_code == 0, result.output
    with Image.open(run_dir / "interpolation_learned.png") as im:
        assert im.size == (5 * 18 + 2, 2 * 18 + 2)  # pairs 0→1, 1→2
    with Image.open(run_dir / "interpolation_learned.gif") as im:
        assert im.n_frames == 8
    result = invoke("interpolate", run_dir, "--random", "--rows", 1, "--steps", 3, "--seed", 2, *CPU)
    assert result.exit_code == 0 and (run_dir / "interpolation_random_2.png").is_file()


def test_morph(run_dir, tmp_path, monkeypatch):
    other = make_run(tmp_path / "other", 2, count=2)
    monkeypatch.chdir(tmp_path)
    result = invoke("morph", run_dir, other, "--steps", 3, *CPU)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "morph_run_other.png") as im:
        assert im.size == (3 * 18 + 2, 3 * 18 + 2)  # 3 rows: as many as the larger run has latents


def test_bases_lists_biggan():
    result = invoke("bases")
    assert result.exit_code == 0 and "biggan-deep-256" in result.output and "python:package.module:factory" in result.output


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d, t: ["sample", t / "nowhere"], "run folder .*nowhere does not exist"),
        (lambda d, t: ["sample", t], "is neither an adapter folder nor an `adaptkit fit` run folder"),
        (lambda d, t: ["sample", d, "--base", "no-such-base"], "unknown base 'no-such-base' \\(available: biggan-deep-128"),
        (lambda d, t: ["sample", d, "--class", "zebra"], "unknown class 'zebra' \\(give an id 0–3\\)"),
        (lambda d, t: ["sample", d, "--class", 9], "class 9 is out of range"),
        (lambda d, t: ["sample", d, "-n", 0], "-n \\(the number of images\\) must be positive, got 0"),
        (lambda d, t: ["sample", d, "--truncation", -1], "truncation must be a positive number"),
        (lambda d, t: ["interpolate", d, "--pair", 0, 5], "latent 5 does not exist: the run has 3"),
        (lambda d, t: ["interpolate", d, "--steps", 1], "at least 2 steps"),
        (lambda d, t: ["morph", d, make_run(t / "c", 4, train_conditional=True)],
         "cannot morph run into c: different adapter options \\(train_conditional: False vs True\\)"),
    ],
)
def test_bad_input_is_one_line(run_dir, tmp_path, make_args, message):
    result = invoke(*make_args(run_dir, tmp_path), *CPU)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("base"), "adapter_config.json: field 'base' is missing"),
    (lambda c: c.pop("targets"), "adapter_config.json: field 'targets' is missing"),
    (lambda c: c.update(config="bsa"), "adapter_config.json: field 'config' must be an object, not a string"),
])
def test_invalid_adapter_config_is_one_line(run_dir, edit, message):
    config = json.loads((run_dir / "adapter_config.json").read_text())
    edit(config)
    (run_dir / "adapter_config.json").write_text(json.dumps(config))
    one_line_error(invoke("sample", run_dir, "-n", 1, *CPU), message)


ZS = torch.zeros(3, 16)


@pytest.mark.parametrize("tensors, message", [
    ({"latents": torch.zeros(3)}, "tensor 'latents' must be floats of shape (N, 16)"),
    ({"latents": torch.zeros(3, 8)}, "tensor 'latents' must be floats of shape (N, 16)"),
    ({"latents": torch.full((3, 16), float("nan"))}, "tensor 'latents' holds NaN or infinite values"),
    ({"latents": ZS, "labels": torch.tensor([0, 9, 1])}, "tensor 'labels' holds class 9, out of range"),
    ({"latents": ZS, "labels": torch.tensor([0, -1, 1])}, "tensor 'labels' holds class -1, out of range"),
    ({"latents": ZS, "labels": torch.tensor([0, 1])}, "tensor 'labels' must be 3 int64 class ids"),
    ({"latents": ZS, "labels": torch.zeros(3)}, "tensor 'labels' must be 3 int64 class ids"),
    ({"labels": torch.tensor([0, 1, 2])}, "holds no 'latents' tensor"),
])
def test_invalid_latents_are_one_line(run_dir, tensors, message):
    save_file(tensors, str(run_dir / "latents.safetensors"))
    base = load_base(TINY_COND)
    with pytest.raises(InvalidCheckpointError, match=re.escape(f"{run_dir / 'latents.safetensors'}: {message}")):
        load_run(run_dir, base=base)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in base.generator.modules())  # detached
    one_line_error(invoke("sample", run_dir, "-n", 1, *CPU), f"latents.safetensors: {message}")
    one_line_error(invoke("interpolate", run_dir, *CPU), f"latents.safetensors: {message}")


@pytest.mark.parametrize("make_args, name", [
    (lambda a, b: ["sample", a, "--out", a / "adapter_model.safetensors"], "adapter_model.safetensors"),
    (lambda a, b: ["sample", a, "--out", a / "sub" / ".." / "summary.json"], "summary.json"),
    (lambda a, b: ["sample", a, "--each", "--out", a / "latents.safetensors"], "latents.safetensors"),
    (lambda a, b: ["sample", a, "--out", a / "checkpoints" / "step-0000004.safetensors"], "checkpoints"),
    (lambda a, b: ["interpolate", a, "--out", a / "adapter_config.json"], "adapter_config.json"),
    (lambda a, b: ["morph", a, b, "--out", b / "latents.safetensors"], "latents.safetensors"),
])
def test_outputs_never_overwrite_a_runs_own_files(run_dir, tmp_path, make_args, name):
    (run_dir / "summary.json").write_text("{}")
    other = make_run(tmp_path / "b", 2)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    one_line_error(invoke(*make_args(run_dir, other), *CPU), f"would overwrite {name} of run ")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_run_without_base_id_needs_base(tmp_path):
    folder = make_run(tmp_path / "anon", 0, base_id=None)
    result = invoke("sample", folder, "-n", 1, *CPU)
    assert result.exit_code == 1 and "does not record its base" in result.output
    assert invoke("sample", folder, "-n", 1, "--base", TINY_COND, *CPU).exit_code == 0
    assert json.loads((folder / "adapter_config.json").read_text())["base"]["id"] is None


def test_sample_the_unadapted_base_without_a_run(tmp_path):
    out = tmp_path / "base.png"
    result = invoke("sample", "--base", "python:models:tiny_cond_generator", "-n", 4, "--out", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (2 * 18 + 2, 2 * 18 + 2)
    one_line_error(invoke("sample", "-n", 4), "give a run folder DIR, or --base NAME")


def test_sample_a_run_uses_its_training_classes(tmp_path):
    from adaptkit.sample import generate_images

    run_dir = make_run(tmp_path / "run", 1, count=3, labels=[2, 2, 3])
    result = invoke("sample", run_dir, "-n", 6, "--seed", 5, "--each", "--out", tmp_path / "each", *CPU)
    assert result.exit_code == 0, result.output
    run = load_run(run_dir)
    z = run.base.sample_latents(6, "base", generator=torch.Generator().manual_seed(5))
    by_class = {c: to_uint8(generate_images(run.base, z, torch.full((6,), c))) for c in range(4)}
    for i in range(6):
        with Image.open(tmp_path / "each" / f"{i:04d}.png") as im:
            px = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)
        found = [c for c in range(4) if torch.equal(px, by_class[c][i])]
        assert found and found[0] in (2, 3), (i, found)
    result = invoke("sample", run_dir, "-n", 6, "--seed", 5, "--class", 0, "--each", "--out", tmp_path / "zero", *CPU)
    with Image.open(tmp_path / "zero" / "0000.png") as im:
        assert torch.equal(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1), by_class[0][0])


def test_sample_a_run_from_its_learned_latents(run_dir, tmp_path):
    result = invoke("sample", run_dir, "-n", 4, "--seed", 7, "--class", 2, "--latents", "learned", "--out",
                    tmp_path / "learned.png", *CPU)
    assert result.exit_code == 0, result.output
    run = load_run(run_dir)
    expected = sample_run(run, 4, class_id=2, seed=7, latents="learned")
    assert not torch.equal(expected, sample_run(run, 4, class_id=2, seed=7))
    with Image.open(tmp_path / "learned.png") as im:
        px = np.asarray(im)
    assert px[2:18, 2:18].tolist() == to_uint8(expected[0]).permute(1, 2, 0).tolist()
    one_line_error(invoke("sample", "--base", "python:models:tiny_cond_generator", "--latents", "learned"),
                   "--latents learned needs a run folder DIR")


def test_interpolate_random_uses_the_runs_classes(tmp_path, monkeypatch):
    import adaptkit.sample as sample

    run_dir = make_run(tmp_path / "run", 1, count=3, labels=[3, 3, 3])
    seen = []
    generate = sample.generate_images
    monkeypatch.setattr(sample, "generate_images", lambda base, z, y=None, **kw: seen.append(y) or generate(base, z, y, **kw))
    result = invoke("interpolate", run_dir, "--random", "--rows", 5, "--steps", 2, *CPU)
    assert result.exit_code == 0, result.output
    assert seen and all(y.tolist() == [3] * 5 for y in seen)


def test_interpolate_more_rows_than_pairs_is_one_clear_error(run_dir):
    one_line_error(invoke("interpolate", run_dir, "--rows", 30, *CPU),
                   "30 rows asked, but the run's 3 learned latents give at most 2 consecutive pairs")
    result = invoke("interpolate", run_dir, "--rows", 2, *CPU)
    assert result.exit_code == 0 and "(2 rows × 8 steps)" in result.output


def test_a_png_without_gif_removes_the_stale_gif_of_an_earlier_call(run_dir):
    assert invoke("interpolate", run_dir, "--gif", *CPU).exit_code == 0
    gif = run_dir / "interpolation_learned.gif"
    assert gif.is_file()
    result = invoke("interpolate", run_dir, "--pair", 0, 2, *CPU)
    assert result.exit_code == 0, result.output
    assert not gif.exists() and "removed" in result.output
