"""The collapse guard: quiet on a healthy run, one warning when the samples stop varying."""
import json

import pytest
import torch

from adaptkit.bases import load_base
from adaptkit.train import FitConfig, fit
from adaptkit.train.collapse import CollapseGuard, diversity
from imagefolder import blob_images, write_images

pytestmark = pytest.mark.usefixtures("one_thread")


def test_diversity_and_blank_fraction():
    varied = torch.rand(8, 3, 4, 4) * 2 - 1
    assert diversity(varied)[0] > 0.3 and diversity(varied)[1] == 0
    same = varied[:1].expand(8, -1, -1, -1)
    assert diversity(same) == (0.0, 0.0)
    assert diversity(torch.full((8, 3, 4, 4), -1.0))[1] == 1.0


def test_guard_warns_once_when_the_generator_collapses():
    base = load_base("python:models:tiny_generator")
    guard = CollapseGuard.create(base, None, seed=0)
    guard.measure(0)
    assert guard.check(10, "hint") is None  # unchanged generator
    with torch.no_grad():
        base.generator.net[0].weight.zero_()  # every latent now gives the same image
    assert guard.check(20, "hint") is None  # one collapsed check may be a dip that recovers
    warning = guard.check(30, "try a lower rate")
    assert warning.startswith("samples collapsed by step 30") and warning.endswith("try a lower rate")
    assert guard.check(40, "hint") is None and len(guard.history) == 5  # warned once, still measured


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blobs")
    write_images(folder, blob_images(10))
    return folder


def run(blobs, out, **changes):
    settings = dict(data=str(blobs), out=str(out), base="python:models:tiny_generator", perceptual="none",
                    steps=20, samples=4, quiet=True, collapse_check_every=10)
    out = fit(FitConfig(**{**settings, **changes}))
    return json.loads((out / "summary.json").read_text())["collapse"]


def test_fit_records_a_healthy_run_and_warns_on_a_collapsed_one(blobs, tmp_path, capsys):
    healthy = run(blobs, tmp_path / "ok", lr_adapter=0.001)
    assert healthy["warning"] is None and [h["step"] for h in healthy["history"]] == [0, 10, 20]
    collapsed = run(blobs, tmp_path / "bad", adapter="none", unfreeze=["all"], lr_base=5.0)
    assert collapsed["warning"].startswith("samples collapsed by step")
    assert "--lr-base 0.5" in collapsed["warning"]
    assert "warning: samples collapsed" in capsys.readouterr().err
