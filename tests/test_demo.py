"""The one-command demo: the built-in few-shot set and `adaptkit demo`."""
import json

import pytest
from PIL import Image, ImageFont

from adaptkit.demo import write_demo_set
from clitools import invoke, one_line_error


pytestmark = pytest.mark.usefixtures("one_thread")


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_demo_set_is_deterministic_per_seed(tmp_path):
    first = files(write_demo_set(tmp_path / "a", n=25, seed=0))
    assert first == files(write_demo_set(tmp_path / "b", n=25, seed=0))
    other = files(write_demo_set(tmp_path / "c", n=25, seed=1))
    assert other.keys() == first.keys() and all(other[k] != first[k] for k in first)
    assert len(first) == 25 and {k.split("/")[0] for k in first} == {str(d) for d in range(8)}
    for name in first:
        with Image.open(tmp_path / "a" / name) as img:
            assert (img.size, img.mode) == ((32, 32), "L")
            assert img.getextrema()[1] == 255 and img.getpixel((0, 0)) == 0   # white digit on black


def test_demo_set_without_freetype(tmp_path, monkeypatch):
    def no_freetype(size=None):   # Pillow without FreeType: no scalable font, only the bitmap one
        if size is not None:
            raise ImportError("The _imagingft C module is not installed")
        return ImageFont.load_default_imagefont()

    monkeypatch.setattr(ImageFont, "load_default", no_freetype)
    written = files(write_demo_set(tmp_path / "a", n=8))
    assert len(written) == 8
    for name in written:
        with Image.open(tmp_path / "a" / name) as img:
            assert img.size == (32, 32) and img.getextrema()[1] > 200



@pytest.mark.slow
def test_demo_command(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--steps", "3", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    for name in ("samples.png", "reconstructions.png", "adapter_config.json", "adapter_model.safetensors"):
        assert (out / name).is_file(), name
    assert len(list((out / "data").rglob("*.png"))) == 25
    assert str(out / "samples.png") in result.stdout
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["adapter"] == "bsa" and config["base"]["id"] == "digits32"
    assert config["metadata"]["training"]["command"].startswith("adaptkit demo --steps 3 --out ")
    assert json.loads((out / "summary.json").read_text())["classes"] == list(range(8))

    one_line_error(invoke("demo", "--steps", "3", "--out", out, "--quiet"),
                   f"{out} is not empty")
    result = invoke("demo", "--steps", "2", "--out", out, "--quiet", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_fit_without_data_points_to_the_demo(tmp_path):
    one_line_error(invoke("fit", "--out", tmp_path / "run"), "adaptkit demo")


def test_the_demo_speed_in_readme_and_help_is_the_measured_one():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    measured = json.loads((root / "benchmarks" / "results" / "demo_time.json").read_text())["runs"][0]
    wall = f"{measured['wall_s']:.0f} s"
    help_text = " ".join(invoke("demo", "--help").output.split())
    assert wall in (root / "README.md").read_text() and wall in help_text
    assert "under two minutes" not in help_text
