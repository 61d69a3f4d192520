"""`adaptkit fit` on the command line: config files, flags, one-line errors, skipped files, resume."""
import json

import pytest

from adaptkit.errors import ConfigError
from adaptkit.train import FitConfig, GloObjective
from adaptkit.train.config import read_config_file
from clitools import invoke as run, one_line_error
from imagefolder import blob_images, write_images
from runs import interrupt_on_call

TINY = ["--base", "python:models:tiny_cond_generator", "--class", "2", "--perceptual", "none", "--samples", "4"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    write_images(folder, blob_images(6))
    return folder





def test_fit_command_trains_and_reports(tmp_path, data):
    result = run("fit", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", "4", "--quiet",
                 "--adapter-option", "reg_weight=0.01")
    assert result.exit_code == 0, result.output
    assert "pixel" in result.stdout and "reconstructions.png" in result.stdout
    assert "6 images of" in result.stderr and "step 4/4" in result.stderr
    config = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert config["config"]["reg_weight"] == 0.01
    command = config["metadata"]["training"]["command"]
    assert command.startswith("adaptkit fit --data ") and "--adapter-option reg_weight=0.01" in command


def test_config_file_with_flags_winning(tmp_path, data):
    toml = tmp_path / "fit.toml"
    toml.write_text(f'data = "{data}"\nbase = "python:models:tiny_cond_generator"\nclass = 2\n'
                    'perceptual = "none"\nsteps = 50\nlr-adapter = 0.02\nsamples = 4\n'
                    '[adapter-option]\nreg_weight = 0.005\n')
    settings = read_config_file(toml)
    assert settings["class_id"] == "2" and settings["lr_adapter"] == 0.02
    assert settings["adapter_options"] == {"reg_weight": 0.005}
    result = run("fit", "--config", toml, "--out", tmp_path / "run", "--steps", "3", "--quiet")
    assert result.exit_code == 0, result.output
    training = json.loads((tmp_path / "run" / "adapter_config.json").read_text())["metadata"]["training"]
    assert training["steps"] == 3 and training["lr_adapter"] == 0.02


@pytest.mark.parametrize("text, message", [
    ("stepz = 3", "unknown setting 'stepz' (valid: "),
    ("steps = 'many'", "setting steps must be int, got 'many'"),
    ("steps = [", "is not valid TOML"),
])
def test_bad_config_files(tmp_path, text, message):
    toml = tmp_path / "fit.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        read_config_file(toml)


def test_config_keys_accept_flag_and_field_names():
    assert FitConfig.from_dict({"lr-adapter": 1, "class": 3, "unfreeze": "all"}) == FitConfig(
        lr_adapter=1.0, class_id="3", unfreeze=["all"])


def test_some_corrupt_files_are_skipped_with_a_warning(tmp_path, data):
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    (data / "readme.txt").write_text("hi")
    result = run("fit", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert "warning: skipped 2 file(s)" in result.stderr and "broken.png" in result.stderr
    assert "readme.txt (not a PNG/JPEG/WebP/BMP file)" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["images"] == 6 and len(summary["skipped"]) == 2
    one_line_error(run("fit", "--data", data, "--out", tmp_path / "run2", *TINY, "--strict"), "(--strict)")


def corrupt_only(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"nope")
    return folder


@pytest.mark.parametrize("args, message", [
    (lambda t, d: ["--data", t / "missing"], "does not exist"),
    (lambda t, d: ["--data", (t / "empty").mkdir() or t / "empty"], "no images in"),
    (lambda t, d: ["--data", corrupt_only(t)], "none of the 1 file(s)"),
    (lambda t, d: ["--data", d, "--base", "nope"], "unknown base 'nope'"),
    (lambda t, d: ["--data", d, "--base", "python:no_such_module:f"], "cannot import 'no_such_module'"),
    (lambda t, d: ["--data", d, "--adapter", "nope"], "unknown adapter 'nope'"),
    (lambda t, d: ["--data", d, "--latent-dim", "7"], "latent of size 7"),
    (lambda t, d: ["--data", d, "--perceptual", "vgg16", "--perceptual-file", t / "x.pth"], "--perceptual none"),
    (lambda t, d: ["--data", d, "--class", "cat"], "unknown class 'cat'"),
    (lambda t, d: ["--data", d, "--adapter-option", "oops"], "--adapter-option takes KEY=VALUE"),
    (lambda t, d: ["--data", d, "--adapter-option", "nope=1"], "unknown option(s) nope"),
    (lambda t, d: ["--out", t / "run", "--resume"], "nothing to resume"),
])
def test_bad_input_is_one_line(tmp_path, data, args, message):
    result = run("fit", *TINY, "--out", tmp_path / "run", *args(tmp_path, data))
    one_line_error(result, message)


def test_unconditional_base_without_class(tmp_path, data):
    result = run("fit", "--data", data, "--out", tmp_path / "run", "--base", "python:models:tiny_generator",
                 "--perceptual", "none", "--steps", "2", "--samples", "4", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["classes"] is None


def test_interrupt_then_resume_from_the_command_line(tmp_path, data, monkeypatch):
    interrupt_on_call(monkeypatch, GloObjective, 2)
    out = tmp_path / "run"
    result = run("fit", "--data", data, "--out", out, *TINY, "--steps", "4", "--quiet")
    assert result.exit_code == 130 and "stopped at step 2/4" in result.stderr
    monkeypatch.undo()
    one_line_error(run("fit", "--out", out, "--resume", "--lr-latent", "0.5"), "cannot resume")
    result = run("fit", "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert "resuming" in result.stderr and json.loads((out / "summary.json").read_text())["steps"] == 4


def test_without_a_terminal_fit_prints_plain_progress_lines(tmp_path, data):
    result = run("fit", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", "20", "--log-every", "2")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == [f"{s}/20" for s in range(2, 21, 2)], result.stderr
    assert all("it/s" in line and "ETA" in line for line in lines)


@pytest.mark.parametrize("command", ["fit", "demo", "sample", "interpolate", "morph", "eval"])
def test_every_computing_command_takes_threads(command):
    from adaptkit.cli import cli

    result = run(command, "--help")
    assert result.exit_code == 0 and "--threads" in result.stdout
    (option,) = [p for p in cli.commands[command].params if p.name == "threads"]
    assert option.default == 1


@pytest.mark.slow
def test_threads_sets_torchs_thread_count(tmp_path, data):
    import torch

    result = run("fit", "--data", data, "--out", tmp_path / "run", *TINY, "--steps", "1", "--quiet", "--threads", "2")
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2   # the one_thread fixture restores it afterwards
    one_line_error_result = run("fit", "--threads", "0")
    assert one_line_error_result.exit_code == 2 and "--threads" in one_line_error_result.output
