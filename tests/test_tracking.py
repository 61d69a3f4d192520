"""`fit --report-to tensorboard`: every loss term, the learning rates and the fixed sample grid in event files."""
import sys

import pytest
import torch
from safetensors.torch import load_file

from adaptkit.train import FitConfig, fit
from clitools import invoke, one_line_error
from imagefolder import blob_images, write_images

TINY_COND = "python:models:tiny_cond_generator"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blobs")
    write_images(folder, blob_images(12))
    return folder


def config(data, out, **changes):
    return FitConfig(**{**dict(data=str(data), out=str(out), base=TINY_COND, class_id="1", perceptual="none",
                               steps=20, log_every=5, checkpoint_every=10, collapse_check_every=10, samples=8,
                               quiet=True), **changes})


def test_tensorboard_events_hold_losses_rates_and_sample_grids(tmp_path, blobs):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = fit(config(blobs, tmp_path / "tracked", report_to="tensorboard", warmup_steps=10))
    events = event_accumulator.EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    for term in ("total", "pixel", "latent", "adapter_reg"):
        assert [e.step for e in events.Scalars(f"loss/{term}")] == [5, 10, 15, 20]
    assert {"lr/adapter", "lr/latents", "collapse/diversity", "collapse/blank"} <= set(tags["scalars"])
    warmup = [e.value for e in events.Scalars("lr/adapter")]
    assert warmup[0] < warmup[-1] and [e.value for e in events.Scalars("lr/latents")] == pytest.approx([0.05] * 4)
    log = (out / "log.csv").read_text().splitlines()
    pixel = log[0].split(",").index("pixel")
    assert [e.value for e in events.Scalars("loss/pixel")] == pytest.approx([float(r.split(",")[pixel]) for r in log[1:]])
    grids = events.Images("samples")
    assert [g.step for g in grids] == [0, 10, 20] and grids[0].width == grids[0].height == 4 * 18 + 2

    plain = fit(config(blobs, tmp_path / "plain", warmup_steps=10))  # tracking changes nothing in the training
    assert not (plain / "tensorboard").exists()
    for name, tensor in load_file(str(out / "adapter_model.safetensors")).items():
        assert torch.equal(tensor, load_file(str(plain / "adapter_model.safetensors"))[name])


def test_report_to_without_tensorboard_is_one_line_before_any_file(tmp_path, blobs, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if the package were missing
    result = invoke("fit", "--data", blobs, "--out", tmp_path / "run", "--base", TINY_COND, "--class", "1",
                    "--perceptual", "none", "--steps", "2", "--report-to", "tensorboard")
    one_line_error(result, "--report-to tensorboard needs the tensorboard package: pip install tensorboard")
    assert not (tmp_path / "run").exists()
    result = invoke("fit", "--data", blobs, "--report-to", "wandb")
    assert result.exit_code == 2 and "'wandb' is not one of 'none', 'tensorboard'" in result.output


def test_tensorboard_events_hold_the_evaluations_during_training(tmp_path, blobs, monkeypatch):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no downloaded weights: embedded networks
    out = fit(config(blobs, tmp_path / "tracked", report_to="tensorboard", eval_every=10, eval_samples=16))
    events = event_accumulator.EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    for metric in ("kid", "fid", "intra_lpips", "memorization_ratio"):
        assert [e.step for e in events.Scalars(f"eval/{metric}")] == [10, 20], metric
    log = (out / "log.csv").read_text().splitlines()
    kid = log[0].split(",").index("eval_kid")
    logged = [float(r.split(",")[kid]) for r in log[1:] if r.split(",")[kid]]
    assert [e.value for e in events.Scalars("eval/kid")] == pytest.approx(logged)
