"""The ``adaptkit`` command line: thin click commands over the library, rendered with rich.

A command's module (and torch with it) is imported only when that command runs or shows its own
help: ``adaptkit --help`` and ``--version`` list the commands from ``COMMANDS`` alone.
"""
from __future__ import annotations

import importlib
import sys

import click
from rich.console import Console
from rich.markup import escape

from .._version import __version__
from ..errors import AdaptkitError
from ..io.os_errors import storage_error

err_console = Console(stderr=True, highlight=False)

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module of adaptkit.cli defining it, the first sentence of its help; a test keeps them equal)
    "adapters": ("info", "List the adapter plugins found through the ``adaptkit.adapters`` entry points."),
    "bases": ("info", "List the base generators found through the ``adaptkit.bases`` entry points."),
    "demo": ("demo", "Adapt the embedded digits32 base (handwritten digits 0–7) to 25 built-in images."),
    "eval": ("evaluate", "Compare generated images with real ones: KMMD, mean variance, FID, KID, LPIPS diversity, "
                         "intra-cluster LPIPS, and how near the samples are to the training images (memorization)."),
    "fit": ("fit", "Adapt a frozen base generator to a folder of 25–100 images."),
    "inspect": ("info", "Show the layers each adapter would attach to on BASE (with the options the base "
                        "recommends for it), its parameter count and (where the adapter describes itself) its "
                        "per-layer settings."),
    "interpolate": ("sampling", "Linear latent interpolation strips of run folder DIR (between its learned "
                                "latents by default; with --random, between random latents in the classes of "
                                "its training images unless --class is given)."),
    "morph": ("sampling", "Morph from run A's domain into run B's: blend their adapters (and latents), as in "
                          "the BSA paper."),
    "pull": ("hub", "Download the adapter in the Hub repo REPO_ID through the Hub cache and check it."),
    "push": ("hub", "Make the Hub repo REPO_ID (or --revision's branch) hold the adapter in DIR: config, "
                    "weights, latents, eval.json, PNGs, model card."),
    "sample": ("sampling", "Draw random images from the adapted generator of run folder DIR (in the classes of "
                           "its training images, unless --class is given), or from the unadapted base --base when "
                           "no DIR is given (random classes; written to the current folder unless --out says "
                           "where)."),
}


def _flag(name: str) -> str:
    """The flag of a setting an error names (imported here: ``adaptkit --help`` must not load torch)."""
    from ..train.config import flag
    return flag(name)


class AdaptkitGroup(click.Group):
    """Loads each command on first use, and turns any error into one red line and a non-zero exit;
    ``--debug`` shows the traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")  # its decorators register it
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, from ``COMMANDS`` for commands not loaded yet (no import, no torch)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
            text = (exc.cli_message(_flag) if isinstance(exc, AdaptkitError) else str(exc)).strip()
            message = text.splitlines()[0] if text else type(exc).__name__
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

