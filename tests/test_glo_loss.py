"""The glo objective's pixel distance over several scales, and the generator's learning-rate warm-up."""
import json

import pytest
import torch

from adaptkit.train import FitConfig, fit
from adaptkit.train.objectives.base import multiscale_l1
from adaptkit.train.state import latest_checkpoint, read_meta
from imagefolder import blob_images, write_images


def stroke(column: int) -> torch.Tensor:
    image = torch.full((1, 1, 16, 16), -1.0)
    image[..., 4:12, column] = 1.0
    return image


def test_plain_l1_prefers_a_blank_image_to_a_stroke_one_pixel_off():
    target, shifted, blank = stroke(6), stroke(7), torch.full((1, 1, 16, 16), -1.0)
    assert torch.equal(multiscale_l1(shifted, target, 1), (shifted - target).abs().flatten(1).mean(1))
    assert multiscale_l1(blank, target, 1) < multiscale_l1(shifted, target, 1)  # why sparse strokes blank out
    assert multiscale_l1(shifted, target, 4) < multiscale_l1(blank, target, 4)  # coarse scales reward the ink


@pytest.mark.usefixtures("one_thread")
def test_warmup_raises_the_adapter_rate_linearly(tmp_path):
    data = tmp_path / "blobs"
    write_images(data, blob_images(4))
    settings = dict(data=str(data), base="python:models:tiny_cond_generator", class_id="1", perceptual="none",
                    samples=4, quiet=True, lr_adapter=0.04, lr_latent=0.05)

    def rates(out, **changes):
        fit(FitConfig(out=str(out), **settings, **changes))
        groups = read_meta(latest_checkpoint(out / "checkpoints"))["optimizers"]["optimizer"]["param_groups"]
        return {g["name"]: g["lr"] for g in groups}

    assert rates(tmp_path / "a", steps=2, warmup_steps=8) == {"adapter": pytest.approx(0.01), "latents": 0.05}
    assert rates(tmp_path / "b", steps=9, warmup_steps=8) == {"adapter": pytest.approx(0.04), "latents": 0.05}
    assert rates(tmp_path / "c", steps=2) == {"adapter": 0.04, "latents": 0.05}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("base, given, used", [("python:fit_bases:tiny_cond_base", None, 0.05),
                                               ("python:fit_bases:untruncated_base", None, 0.0),
                                               ("python:fit_bases:untruncated_base", 0.2, 0.2)])
def test_latent_spread_weight_follows_the_base_sampling(tmp_path, base, given, used):
    data = tmp_path / "blobs"
    write_images(data, blob_images(4))
    out = fit(FitConfig(data=str(data), out=str(tmp_path / "run"), base=base, class_id="1", steps=1, samples=4,
                        quiet=True, latent_weight=given, perceptual="none"))
    assert json.loads((out / "summary.json").read_text())["loss_weights"]["latent"] == used
