"""Options and helpers shared by the commands: base sizes, picking a base and a device, drawing
latents, opening a run, progress bars."""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..sample import LATENT_SOURCES
from .threads import threads_option

if TYPE_CHECKING:
    from ..io.run_dir import Run

console = Console(highlight=False, soft_wrap=True)

RUN_CLASSES = "the classes of the run's training images, in their proportions"

BASE_SIZE_OPTIONS = (
    click.option("--latent-dim", type=int, help="Latent size of a python: base that does not expose it."),
    click.option("--num-classes", type=int, help="Class count of a conditional python: base that does not expose it."),
)


def _apply(options: list | tuple, f: Callable) -> Callable:
    for option in reversed(options):
        f = option(f)
    return f


def base_size_options(f: Callable) -> Callable:
    """Add ``--latent-dim`` and ``--num-classes`` (passed as ``latent_dim``/``num_classes``)."""
    return _apply(BASE_SIZE_OPTIONS, f)


def base_options(f: Callable) -> Callable:
    """Options to pick the base and where it runs: ``--base``, the base sizes, ``--device``,
    ``--batch-size``, ``--threads``."""
    return _apply([
        click.option("--base", "base_spec", metavar="SPEC",
                     help="Base to use instead of the one the run records: a name from `adaptkit bases` "
                          "or python:package.module:factory."),
        *BASE_SIZE_OPTIONS,
        click.option("--device", default="auto", show_default=True,
                     help="cpu, cuda, cuda:N, mps, or auto (CUDA, then MPS, then CPU)."),
        click.option("--batch-size", default=32, show_default=True, help="Images generated per forward pass."),
        threads_option,
    ], f)


def latent_options(class_default: str) -> Callable[[Callable], Callable]:
    """Options for drawing random latents (``--class``, ``--seed``, ``--truncation``);
    ``class_default`` says which classes are used without ``--class``."""
    options = [
        click.option("--class", "class_", metavar="ID|NAME",
                     help=f"Class of every image (conditional bases): an id or a name. Default: {class_default}."),
        click.option("--seed", default=0, show_default=True, help="Seed of the random latents and classes."),
        click.option("--truncation", default="base", show_default=True, metavar="T|none|base",
                     help="Redraw latent values beyond ±T (the papers' truncation trick); `none` draws "
                     "plain N(0, I); `base` uses the base's default (0.4 for BigGAN and digits32, none "
                     "for digiface64)."),
    ]
    return lambda f: _apply(options, f)


latent_source_option = click.option(
    "--latents", "latent_source", type=click.Choice(LATENT_SOURCES), default="normal", show_default=True,
    help="Run folder: draw latents from the base's normal (--truncation applies), or from the Gaussian "
         "fitted to the run's learned latents (often closer to the training images on untruncated bases).")


def class_value(value: str | None) -> int | str | None:
    """A ``--class`` value: an id if it is a number, else a class name."""
    return int(value) if value is not None and value.lstrip("-").isdigit() else value


def open_run(folder: str, base_spec: str | None, latent_dim: int | None, num_classes: int | None,
             device_name: str) -> "Run":
    """Load run folder ``folder`` on ``device_name``, with base ``base_spec`` instead of its own if given."""
    from ..bases import load_base
    from ..device import select_device
    from ..io.run_dir import load_run

    dev = select_device(device_name)
    base = load_base(base_spec, latent_dim=latent_dim, num_classes=num_classes, device=dev) if base_spec else None
    with console.status(f"loading {folder}"):
        return load_run(folder, base=base, device=dev)


@contextlib.contextmanager
def progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar over ``total`` images; yields the per-batch callback."""
    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(what, total=total)
        yield lambda k: bar.advance(task, k)
