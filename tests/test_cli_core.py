"""The CLI: version, plugin listing, inspect, and one-line errors for bad input."""
import subprocess
import sys

import pytest

import adaptkit
from adaptkit import attach_adapter, save_adapter
from adaptkit.bases import BASES
from clitools import invoke as run, one_line_error
from models import tiny_cond_generator
from test_attach import perturb

BASE = "python:models:tiny_cond_generator"


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and adaptkit.__version__ in result.output


def test_adapters_lists_builtins():
    result = run("adapters")
    assert result.exit_code == 0
    assert "adaptkit_plugins.bsa:FilmAdapter" in result.output and "film" in result.output


@pytest.mark.parametrize(
    "base, title, layer",
    [
        (BASE, "bsa: 4 target layers, 128 parameters", "block1.bn1"),  # a factory returning an nn.Module
        ("python:fit_bases:tiny_cond_base", "bsa: 4 target layers, 128 parameters", "block1.bn1"),  # ... a Base
        ("digits32", "bsa: 6 target layers, 816 parameters", "blocks.0.bn1"),  # a registered name
        ("python:adaptkit.bases.digits32:digits32", "bsa: 6 target layers, 816 parameters", "blocks.0.bn1"),
    ],
)
def test_inspect_takes_every_kind_of_base(base, title, layer):
    result = run("inspect", base, "-a", "bsa")
    assert result.exit_code == 0, result.output
    assert title in result.output and layer in result.output


def test_inspect_attaches_with_the_options_the_base_recommends():
    result = run("inspect", "python:fit_bases:projected_base", "-a", "bsa")
    assert result.exit_code == 0, result.output
    assert "bsa: 5 target layers" in result.output and "linear" in result.output


@pytest.fixture
def adapter_dir(tmp_path):
    handle = attach_adapter(tiny_cond_generator(), "bsa")
    perturb(handle)
    return save_adapter(handle, tmp_path / "ad")


def test_inspect_load(adapter_dir):
    result = run("inspect", BASE, "--load", str(adapter_dir))
    assert result.exit_code == 0 and "bsa: 4 target layers" in result.output


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((BASE, "-a", "nope"), "unknown adapter 'nope'"),
        (("python:models:no_such_factory",), "has no attribute 'no_such_factory'"),
        (("python:no_such_module:f",), "cannot import 'no_such_module'"),
        (("python:fit_bases:broken_base",),
         "base python:fit_bases:broken_base: its factory raised RuntimeError: no weights in /nowhere"),
        (("python:models:torch",), "base python:models:torch gave module, not an adaptkit Base or nn.Module"),
        ((BASE, "--latent-dim", "8"), "with a latent of size 8"),
        (("python:models:NoNormGenerator", "-a", "bsa"), ""),  # a class is a factory too: must work
    ],
)
def test_inspect_bad_input(args, pattern):
    result = run("inspect", *args)
    if pattern:
        one_line_error(result, pattern)
    else:
        assert result.exit_code == 0, result.output


def test_unknown_base_lists_the_registered_ones():
    result = run("inspect", "digits")
    one_line_error(result, "unknown base 'digits' (available: ")
    assert all(name in result.output for name in BASES.names())


def test_inspect_load_errors(adapter_dir, tmp_path):
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"\x01" * 30)
    one_line_error(run("inspect", BASE, "--load", str(adapter_dir)), "corrupt or truncated")
    handle = attach_adapter(tiny_cond_generator(ch=8), "bsa")
    other = save_adapter(handle, tmp_path / "other")
    one_line_error(run("inspect", BASE, "--load", str(other)), "made for a different base")
    one_line_error(run("inspect", BASE, "--load", str(tmp_path / "missing")), "does not exist")


@pytest.mark.slow
def test_console_script_error_is_one_line_and_debug_shows_traceback(tmp_path):
    cmd = [sys.executable, "-m", "adaptkit", "inspect", BASE, "-a", "nope"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="tests")
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert "unknown adapter 'nope'" in proc.stderr
    proc = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, cwd="tests")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_an_error_message_holding_markup_is_printed_as_is(tmp_path):
    missing = tmp_path / "[/x]"
    one_line_error(run("fit", "--data", str(missing), "--out", str(tmp_path / "run")),
                   f"image folder {missing} does not exist")
