"""adaptkit.plot: the loss and metric curves' PNGs."""
import numpy as np
from PIL import Image

from adaptkit.plot import plot_losses


def test_a_long_legend_name_is_not_cut_off(tmp_path):
    names = ["short", "transfergan default n=3 and a much longer label"]
    path = plot_losses([0, 10, 20], {n: [1.0, 0.5, 0.25] for n in names}, tmp_path / "curves.png")
    pixels = np.asarray(Image.open(path).convert("L"))
    assert pixels.shape == (520, 900)
    assert (pixels[:, -8:] == 255).all(), "the legend runs off the right edge"
    assert (pixels[:, 700:] < 128).any(), "no legend drawn"
