"""The CLI: version, plugin listing, inspect, and one-line errors for bad input."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

import adaptkit
from adaptkit import attach_adapter, save_adapter
from adaptkit.cli import cli
from models import tiny_cond_generator
from test_attach import perturb

BASE = "python:models:tiny_cond_generator"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and adaptkit.__version__ in result.output


def test_adapters_lists_builtins():
    result = run("adapters")
    assert result.exit_code == 0
    assert "adaptkit_plugins.bsa:FilmAdapter" in result.output and "film" in result.output


def test_inspect_shows_targets_and_counts():
    result = run("inspect", BASE, "-a", "bsa")
    assert result.exit_code == 0, result.output
    assert "bsa: 4 target layers, 128 parameters" in result.output
    assert "block1.bn1" in result.output and "CondBatchNorm2d" in result.output


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
        (("digits",), "unknown base 'digits'"),
        (("python:models:NoNormGenerator", "-a", "bsa"), ""),  # a class is a factory too: must work
    ],
)
def test_inspect_bad_input(args, pattern):
    result = run("inspect", *args)
    if pattern:
        assert_one_line_error(result, pattern)
    else:
        assert result.exit_code == 0, result.output


def test_inspect_load_errors(adapter_dir, tmp_path):
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"\x01" * 30)
    assert_one_line_error(run("inspect", BASE, "--load", str(adapter_dir)), "corrupt or truncated")
    handle = attach_adapter(tiny_cond_generator(ch=8), "bsa")
    other = save_adapter(handle, tmp_path / "other")
    assert_one_line_error(run("inspect", BASE, "--load", str(other)), "made for a different base")
    assert_one_line_error(run("inspect", BASE, "--load", str(tmp_path / "missing")), "does not exist")


def test_console_script_error_is_one_line_and_debug_shows_traceback(tmp_path):
    cmd = [sys.executable, "-m", "adaptkit", "inspect", BASE, "-a", "nope"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="tests")
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert "unknown adapter 'nope'" in proc.stderr
    proc = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, cwd="tests")
    assert proc.returncode == 1 and "Traceback" in proc.stderr
