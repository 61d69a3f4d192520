"""Library errors name settings as the Python API does (``ema_decay``, ``class_id``); the command
line shows the same errors with its flags (``--ema-decay``, ``--class``), on one line."""
import pytest

from adaptkit.bases.registry import wrap_generator
from adaptkit.data import image_classes, load_image_folder
from adaptkit.errors import AdaptkitError, ConfigError, DataError, option, render_options
from adaptkit.train import FitConfig
from adaptkit.train.config import flag
from clitools import invoke, one_line_error
from models import TinyGenerator

TINY = "python:models:tiny_generator"


class Sizeless(TinyGenerator):
    """A generator that does not say its latent size."""

    def __init__(self):
        super().__init__()
        del self.latent_dim


def sizeless_generator():
    return Sizeless()


def test_a_mark_shows_the_python_name_or_the_flag():
    message = f"{option('class_id')} / {option('unfreeze', ['a.*'])} / {option('resume', True)} / {option('pairs')}"
    assert render_options(message) == "class_id / unfreeze=['a.*'] / resume=True / pairs"
    assert render_options(message, flag) == "--class / --unfreeze 'a.*' / --resume / --pair"
    error = ConfigError(message)
    assert str(error) == render_options(message) and error.cli_message(flag) == render_options(message, flag)


@pytest.mark.parametrize("settings, python, cli", [
    (dict(ema_decay=2.0), "ema_decay must be in [0, 1)", "--ema-decay must be in [0, 1)"),
    (dict(lr_adapter=-1.0), "lr_adapter must be positive", "--lr-adapter must be positive"),
    (dict(augment="on"), "augment is a setting of the adversarial objective's discriminator: it needs objective='adversarial'",
     "--augment is a setting of the adversarial objective's discriminator: it needs --objective adversarial"),
    (dict(adapter="none", adapter_options={"a": 1}), "adapter options (adapter_options) need an adapter",
     "adapter options (--adapter-option) need an adapter"),
])
def test_fit_settings_python_names_and_cli_flags(tmp_path, blobs, settings, python, cli):
    config = FitConfig(data=str(blobs), out=str(tmp_path / "run"), unfreeze=["all"], **settings)
    with pytest.raises(ConfigError) as info:
        config.validate()
    assert python in str(info.value) and "--" not in str(info.value)
    args = []
    for name, value in settings.items():
        pairs = value.items() if isinstance(value, dict) else [(None, value)]
        for key, v in pairs:
            args += [f"--{flag(name)}", f"{key}={v}" if key else v]
    one_line_error(invoke("fit", "--data", blobs, "--out", tmp_path / "run", "--unfreeze", "all", *args), cli)
    assert not (tmp_path / "run").exists()


def test_class_and_base_size_errors_name_the_argument_or_the_flag(tmp_path, blobs):
    base = wrap_generator(TINY, TinyGenerator())
    with pytest.raises(DataError, match="no class to fix with class_id$"):
        image_classes(load_image_folder(blobs, channels=3, resolution=16), base, "1")
    one_line_error(invoke("fit", "--data", blobs, "--out", tmp_path / "run", "--base", TINY, "--class", "1",
                          "--perceptual", "none"), "no class to fix with --class")
    with pytest.raises(AdaptkitError, match="pass latent_dim$"):
        wrap_generator("sizeless", Sizeless())
    one_line_error(invoke("sample", "--base", "python:test_error_options:sizeless_generator", "--out",
                          tmp_path / "s.png"), "pass --latent-dim")
