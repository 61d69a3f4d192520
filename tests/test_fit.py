"""`fit`: outputs, exact reconstructions from the saved run, bitwise resume, NaN stop, update-all."""
import json
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from adaptkit.bases import load_base
from adaptkit.data import load_image_folder
from adaptkit.errors import AdaptkitError, ConfigError, PluginNotFoundError, TrainingError, TrainingInterrupted
from adaptkit.images import save_grid, side_by_side
from adaptkit.io.run_dir import BASE_WEIGHTS_NAME, load_run
from adaptkit.sample import generate_images
from adaptkit.train import GloObjective, fit, resume_config
from adaptkit.train.objectives import latent_spread
from models import tiny_cond_generator
from runs import change_loss, fit_config, interrupt_on_call, nan_pixel

TINY_COND = "python:models:tiny_cond_generator"
RUN_FILES = ["adapter_config.json", "adapter_model.safetensors", "checkpoints", "interpolation.png",
             "latents.safetensors", "log.csv", "loss.png", "reconstructions.png", "samples.png", "summary.json"]


pytestmark = pytest.mark.usefixtures("one_thread")


config = fit_config


def pixels(path):
    return np.asarray(Image.open(path))


def reconstruction_error(base, latents, labels, images):
    return (generate_images(base, latents, labels) - images).abs().mean().item()


def test_fit_writes_the_run_and_reproduces_reconstructions(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run"))
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    images = load_image_folder(blobs, channels=3, resolution=16).images

    run = load_run(out)
    assert run.handle is not None and run.labels.tolist() == [1] * 25
    generated = generate_images(run.base, run.latents, run.labels)
    grid, nrow = side_by_side(images, generated)
    save_grid(grid, tmp_path / "again.png", nrow=nrow)
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(out / "reconstructions.png"))

    before = reconstruction_error(load_base(TINY_COND), torch.zeros_like(run.latents), run.labels, images)
    after = reconstruction_error(run.base, run.latents, run.labels, images)
    assert after < 0.6 * before

    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base"]["id"] == TINY_COND and cfg["metadata"]["base_options"] == {}
    assert cfg["metadata"]["training"]["steps"] == 40 and cfg["metadata"]["training"]["class_id"] == "1"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["images"] == 25 and summary["world_size"] == 1
    assert summary["final_losses"]["pixel"] < summary["first_losses"]["pixel"]
    assert summary["it_per_s"] > 0 and summary["versions"]["torch"] == torch.__version__
    log = (out / "log.csv").read_text().splitlines()
    assert log[0] == "step,elapsed_s,total,pixel,latent,adapter_reg" and len(log) == 5
    assert Image.open(out / "loss.png").size[0] == 900
    assert Image.open(out / "samples.png").size == (4 * 18 + 2, 4 * 18 + 2)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000040.json",
                                                                     "step-0000040.safetensors"]


def tensors(out):
    return {**load_file(str(out / "adapter_model.safetensors")), **load_file(str(out / "latents.safetensors"))}


def test_ctrl_c_saves_a_checkpoint_and_resume_is_bitwise(tmp_path, blobs, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when run as a background job
    reference = fit(config(blobs, tmp_path / "full", steps=8, checkpoint_every=3, log_every=2))

    interrupt_on_call(monkeypatch, GloObjective, 5)
    with pytest.raises(TrainingInterrupted, match=r"stopped at step 5/8; .*--resume"):
        fit(config(blobs, tmp_path / "cut", steps=8, checkpoint_every=3, log_every=2))
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())[0] == "step-0000005.json"
    assert not (tmp_path / "cut" / "adapter_config.json").exists()

    log = tmp_path / "cut" / "log.csv"
    assert [line.split(",")[0] for line in log.read_text().splitlines()] == ["step", "2", "3", "4", "5"]
    with open(log, "a") as f:   # as if the process had died after logging step 7, past its last checkpoint
        f.write("7,1.0,2.0,0.5,28.0,0.01\n")
    resumed = fit(resume_config(tmp_path / "cut"))
    assert [line.split(",")[0] for line in log.read_text().splitlines()] == ["step", "2", "3", "4", "5", "6", "8"]
    a, b = tensors(reference), tensors(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(pixels(reference / "reconstructions.png"), pixels(resumed / "reconstructions.png"))


def test_the_run_folder_and_its_log_exist_while_training(tmp_path, blobs, monkeypatch):
    out, seen = tmp_path / "run", {}
    step = GloObjective.loss

    def watching(self, index):
        if not seen and (out / "log.csv").is_file() and len((out / "log.csv").read_text().splitlines()) == 3:
            seen["summary"] = json.loads((out / "summary.json").read_text())
            seen["files"] = sorted(p.name for p in out.iterdir())
        return step(self, index)

    monkeypatch.setattr(GloObjective, "loss", watching)
    fit(config(blobs, out, steps=30, log_every=10, checkpoint_every=10))
    assert seen["summary"]["status"] == "running" and seen["summary"]["training"]["steps"] == 30
    assert seen["summary"]["base"]["id"] == TINY_COND
    assert {"checkpoints", "log.csv", "loss.png", "summary.json"} <= set(seen["files"])   # at step 20 of 30
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


def test_loss_png_gives_each_term_its_own_axis(tmp_path):
    from adaptkit.plot import COLORS
    from adaptkit.train.outputs import write_log

    history = [{"step": s, "elapsed_s": s / 10, "total": 100 + 0.5 / s, "pixel": 0.5 / s, "latent": 100.0}
               for s in range(1, 41)]
    write_log(tmp_path, history)
    px = np.asarray(Image.open(tmp_path / "loss.png").convert("RGB")).astype(int)
    total = np.all(np.abs(px - [int(COLORS[0][i:i + 2], 16) for i in (1, 3, 5)]) < 8, axis=-1)
    rows = np.nonzero(total.any(axis=1))[0]
    assert rows.max() - rows.min() > 100   # the total's fall is visible, not flattened by the latent term


def test_resume_can_extend_but_not_change_settings(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", steps=4))
    with pytest.raises(ConfigError, match=r"cannot resume .* \(lr_latent 0\.05 → 0\.1\)"):
        fit(config(blobs, out, steps=6, resume=True, lr_latent=0.1))
    fit(resume_config(out, steps=6))
    assert json.loads((out / "summary.json").read_text())["steps"] == 6
    checkpoint = next((out / "checkpoints").glob("*.json"))  # as written before --freeze-d etc. existed
    meta = json.loads(checkpoint.read_text())
    for newer in ("augment", "freeze_d", "ema_decay"):
        del meta["settings"][newer]
    checkpoint.write_text(json.dumps(meta))
    fit(resume_config(out, steps=8))
    with pytest.raises(ConfigError, match="nothing to resume"):
        resume_config(tmp_path / "elsewhere")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, blobs, monkeypatch):
    change_loss(monkeypatch, GloObjective, lambda call: call >= 6, nan_pixel)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"non-finite by step 6 \(total=nan, pixel=nan.*step-0000004\.json\) is kept"):
        fit(config(blobs, out, steps=10, log_every=2, checkpoint_every=4))
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-0000004.json", "step-0000004.safetensors"]
    saved = load_file(str(out / "checkpoints" / "step-0000004.safetensors"))
    assert all(torch.isfinite(t).all() for k, t in saved.items() if t.is_floating_point())
    assert (out / "log.csv").is_file()


def test_update_all_fine_tunes_the_base_without_an_adapter(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", adapter="none", unfreeze=["all"], steps=6))
    assert not (out / "adapter_config.json").exists() and (out / BASE_WEIGHTS_NAME).exists()
    summary = json.loads((out / "summary.json").read_text())
    total = sum(p.numel() for p in tiny_cond_generator().parameters())
    assert summary["adapter"] is None and summary["unfrozen_base_parameters"] == total
    run = load_run(out)
    assert run.handle is None
    changed = [n for n, p in run.base.generator.named_parameters()
               if not torch.equal(p, dict(tiny_cond_generator().named_parameters())[n])]
    assert changed
    images = load_image_folder(blobs, channels=3, resolution=16).images
    grid, nrow = side_by_side(images, generate_images(run.base, run.latents, run.labels))
    save_grid(grid, tmp_path / "again.png", nrow=nrow)
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(out / "reconstructions.png"))


def test_unfreezing_a_layer_next_to_an_adapter(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", unfreeze=["linear"], steps=3))
    assert sorted(load_file(str(out / BASE_WEIGHTS_NAME))) == ["linear.bias", "linear.weight"]
    run = load_run(out)
    assert run.handle is not None and not torch.equal(run.base.generator.linear.weight,
                                                      tiny_cond_generator().linear.weight)
    with pytest.raises(ConfigError, match="unfreeze='nope' matches no layer"):
        fit(config(blobs, tmp_path / "run2", unfreeze=["nope"]))


def test_perceptual_loss_of_the_base(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", base="python:fit_bases:tiny_cond_base", perceptual="auto", steps=3))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["perceptual"] == "base" and summary["loss_weights"]["perceptual"] == 1.0
    assert "perceptual" in summary["final_losses"]


@pytest.mark.parametrize("changes, error, message", [
    (dict(base="nope"), PluginNotFoundError, "unknown base 'nope'"),
    (dict(adapter="nope"), PluginNotFoundError, "unknown adapter 'nope'"),
    (dict(objective="nope"), ConfigError, "unknown objective 'nope' \\(available: adversarial, glo\\)"),
    (dict(latent_dim=7), AdaptkitError, "latent of size 7 .* failed"),
    (dict(adapter="none"), ConfigError, "adapter='none' trains no generator parameter"),
    (dict(steps=0), ConfigError, "steps must be positive"),
    (dict(data=None), ConfigError, "give the folder of training images as data"),
])
def test_bad_settings_fail_before_training(tmp_path, blobs, changes, error, message):
    with pytest.raises(error, match=message):
        fit(config(blobs, tmp_path / "run", **changes))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_out_folder_is_never_overwritten_silently(tmp_path, blobs):
    out = tmp_path / "run"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="is not empty: .*resume=True.*overwrite=True"):
        fit(config(blobs, out, steps=2))
    fit(config(blobs, out, steps=2, overwrite=True))
    assert (out / "mine.txt").read_text() == "keep" and (out / "summary.json").exists()
    with pytest.raises(AdaptkitError, match="does not exist"):
        fit(config(tmp_path / "missing", out, steps=2, overwrite=True))
    assert (out / "summary.json").exists() and (out / "checkpoints").exists()  # a failed run deletes nothing


def test_latent_spread_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(3, 4, generator=g), torch.randn(30, 4, generator=g)
    d = torch.tensor([[((a - b) ** 2).sum().item() for b in t] for a in z])
    expected = d.min(dim=0).values.mean() + d.min(dim=1).values.mean()
    assert torch.allclose(latent_spread(z, t), expected, atol=1e-5)


@pytest.mark.parametrize("changes, lr", [
    ({}, 0.05),                                              # bsa: the glo objective's default
    ({"adapter": "pwgconv"}, 5e-4),                          # pwgconv recommends its own rate for glo
    ({"adapter": "pwgconv", "lr_adapter": 0.01}, 0.01),     # --lr-adapter wins
])
def test_adapter_learning_rate_defaults(tmp_path, blobs, changes, lr):
    out = fit(config(blobs, tmp_path / "run", steps=2, checkpoint_every=2, **changes))
    assert json.loads((out / "summary.json").read_text())["adapter"]["lr"] == pytest.approx(lr)
