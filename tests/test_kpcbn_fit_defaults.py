"""kpcbn at fit's defaults on new classes unlike the base's: two folders of black-on-white drawings
on digits32 (white digits on black) give drawn, varied samples in each new class."""
import pytest

from adaptkit.io.run_dir import load_run
from adaptkit.sample import sample_run
from clitools import invoke
from drawings import write_drawings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("lr", [None, pytest.param("0.05", marks=pytest.mark.xfail(strict=True, reason="glo's bsa rate"))])
def test_default_glo_fit_draws_each_new_class(tmp_path, lr):
    for seed, name in enumerate(("glyph_a", "glyph_b")):
        write_drawings(tmp_path / "data" / name, n=10, seed=seed, jitter=0.04)
    out = tmp_path / "run"
    rate = ["--lr-adapter", lr] if lr else []
    result = invoke("fit", "--data", tmp_path / "data", "--out", out, "--adapter", "kpcbn", "--steps", "10",
                    "--latent-search", "4", "--collapse-check-every", "0", "--samples", "4", "--quiet", *rate)
    assert result.exit_code == 0, result.output
    run = load_run(out)
    for name in ("glyph_a", "glyph_b"):
        x = sample_run(run, 16, class_id=name)
        ink = (x > -0.5).float().mean((1, 2, 3))               # strokes: the base draws white on black
        assert bool((ink > 0.01).all()), f"{name}: blank samples (ink {ink.min():.3f})"
        assert float(x.std(0).mean()) > 0.02, f"{name}: every sample the same"
