"""``--latent-dim``/``--num-classes``: the sizes of a base that does not expose them."""
from __future__ import annotations

from typing import Callable

import click

BASE_SIZE_OPTIONS = (
    click.option("--latent-dim", type=int, help="Latent size of a python: base that does not expose it."),
    click.option("--num-classes", type=int, help="Class count of a conditional python: base that does not expose it."),
)


def base_size_options(f: Callable) -> Callable:
    """Add ``--latent-dim`` and ``--num-classes`` (passed as ``latent_dim``/``num_classes``)."""
    for option in reversed(BASE_SIZE_OPTIONS):
        f = option(f)
    return f
