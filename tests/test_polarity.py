"""Training images of the opposite polarity to the base's (black-on-white drawings for digits32):
found, inverted by fit, recorded, and honoured by sample and eval."""
import json

import numpy as np
import pytest
from PIL import Image

from adaptkit.bases import load_base
from adaptkit.data import load_image_folder
from adaptkit.polarity import check_polarity, decide_inversion
from clitools import invoke
from drawings import write_drawings

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = ["--steps", "2", "--samples", "8", "--collapse-check-every", "0", "--latent-search", "4", "--quiet"]


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    return write_drawings(tmp_path_factory.mktemp("drawings") / "data")


def test_black_on_white_drawings_are_opposite_to_digits32(drawings):
    base = load_base("digits32")
    images = load_image_folder(drawings, channels=1, resolution=32).images
    check = check_polarity(images, base)
    assert check.opposite and check.data.background > 0.5 > -0.5 > check.base.background
    assert not check_polarity(images.neg(), base).opposite
    assert decide_inversion("auto", check, "digits32")[0] and not decide_inversion("no", check, "digits32")[0]
    assert "--invert yes" in decide_inversion("no", check, "digits32")[1]


def test_fit_inverts_drawings_records_it_and_shows_them_as_drawn(tmp_path, drawings):
    out = tmp_path / "run"
    result = invoke("fit", "--data", drawings, "--out", out, "--class", "3", *QUICK)
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if "inverted" in line]
    assert len(said) == 1 and "dark on light" in said[0] and "light on dark" in said[0], result.stderr
    assert "--invert no" in said[0]
    training = json.loads((out / "adapter_config.json").read_text())["metadata"]["training"]
    assert training["invert"] == "yes"
    assert json.loads((out / "summary.json").read_text())["training"]["invert"] == "yes"
    with Image.open(out / "reconstructions.png") as im:   # the training drawing, as drawn: white page
        assert np.asarray(im)[2:34, 2:34].mean() > 200
    with Image.open(out / "samples.png") as im:           # samples shown as drawings too
        assert np.asarray(im)[2:34, 2:34].mean() > 150

    result = invoke("sample", out, "-n", "4", "--each", "--out", tmp_path / "each", "--device", "cpu")
    assert result.exit_code == 0, result.output
    for png in (tmp_path / "each").iterdir():
        with Image.open(png) as im:
            assert np.asarray(im)[:3].mean() > 200, png   # white background, as the drawings

    result = invoke("eval", out, "--real", drawings, "-n", "20", "--features", "embedded",
                    "--diversity", "feature-maps", "--json", tmp_path / "eval.json")
    assert result.exit_code == 0, result.output
    assert any("real images were inverted" in note for note in json.loads((tmp_path / "eval.json").read_text())["notes"])


def test_invert_no_warns_in_one_line_and_keeps_the_images(tmp_path, drawings):
    result = invoke("fit", "--data", drawings, "--out", tmp_path / "run", "--class", "3", "--invert", "no", *QUICK)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "--invert yes" in warned[0]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["training"]["invert"] == "no"
