"""The ``adaptkit`` command line: thin click commands over the library, rendered with rich."""
from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import AdaptkitError
from ..io.os_errors import storage_error

err_console = Console(stderr=True, highlight=False)


class AdaptkitGroup(click.Group):
    """Turns any error into one red line and a non-zero exit; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            exc = storage_error(exc) or exc  # a full disk or a denied permission is no bug of ours
            prefix = "error" if isinstance(exc, AdaptkitError) else f"unexpected {type(exc).__name__}"
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = "" if isinstance(exc, AdaptkitError) else " (run with --debug for the traceback)"
            err_console.print(f"[bold red]{prefix}:[/] {escape(message)}{hint}", soft_wrap=True)
            sys.exit(1)


@click.group(cls=AdaptkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adaptkit")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Adapt a frozen, pretrained image generator with tiny adapters from a few images."""


def main() -> None:
    cli(prog_name="adaptkit")


from . import demo, evaluate, fit, hub, info, sampling  # noqa: E402,F401  (registers the commands)
