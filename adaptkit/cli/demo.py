"""``adaptkit demo``: adapt the embedded digits32 base to a built-in few-shot set, in one command."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..demo import DEMO_DATA, DEMO_OUT, DEMO_STEPS, run_demo
from ..io.run_dir import RECONSTRUCTIONS_PNG, SAMPLES_PNG
from . import cli
from .fit import command_line, field_options, given_settings, train_and_report
from .threads import threads_option

console = Console(highlight=False)


@cli.command("demo")
@click.option("--out", default=DEMO_OUT, show_default=True, metavar="DIR",
              help=f"Run folder to write; the training images go to its {DEMO_DATA}/ subfolder.")
@click.option("--steps", type=int, default=DEMO_STEPS, show_default=True, help="Optimizer steps.")
@threads_option
@field_options("adapter", "adapter_options", "unfreeze", "seed", "device", "overwrite", "quiet")
@click.pass_context
def demo_command(ctx: click.Context, **options: Any) -> None:
    """Adapt the embedded digits32 base (handwritten digits 0–7) to 25 built-in images.

    The images are made here, not downloaded: bold, slanted typeset digits, one class folder per
    digit, written to DIR/data. Then `adaptkit fit` trains a bsa adapter on them (70 s end to end
    on an idle 2-core CPU machine, 224 s on the same machine while busy: see the README) and
    writes samples.png and reconstructions.png, where the handwritten digits have turned bold and
    slanted.
    """
    given = given_settings(ctx, options)
    out = train_and_report(lambda: run_demo(**given, command=command_line(ctx, given)))
    if out is not None:
        console.print(f"training images: {Path(out, DEMO_DATA)}/  ·  look at {Path(out, SAMPLES_PNG)} "
                      f"and {Path(out, RECONSTRUCTIONS_PNG)}", soft_wrap=True)
