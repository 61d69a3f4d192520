"""Running the command line in tests: ``invoke`` and the one-line error check."""
from __future__ import annotations

from click.testing import CliRunner, Result

from adaptkit.cli import cli


def invoke(*args) -> Result:
    """``adaptkit ARGS…`` through click's runner (arguments may be paths or numbers)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result: Result, message: str) -> None:
    """The command failed with exit code 1 and exactly one ``error: …`` line containing ``message``."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
