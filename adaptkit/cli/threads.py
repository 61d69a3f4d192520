"""``--threads``: one option definition for every command that computes (fit, demo, sample,
interpolate, morph, eval)."""
from __future__ import annotations

from typing import Any, Callable

import click
import torch

DEFAULT_THREADS = 1
"""One torch thread: on digits32-sized models the per-operation work is too small to share, and
more threads ran slower on a 2-core machine (``benchmarks/threads.py``; docs/usage.md)."""


def _set_threads(ctx: click.Context, param: click.Parameter, value: int) -> int:
    torch.set_num_threads(value)
    return value


def threads_option(command: Callable) -> Callable:
    """Add ``--threads N`` (default 1), which sets torch's CPU thread count before the command runs."""
    option: Callable[[Callable], Any] = click.option(
        "--threads", type=click.IntRange(min=1), default=DEFAULT_THREADS, show_default=True,
        expose_value=False, callback=_set_threads, is_eager=True,
        help="CPU threads of torch. One was fastest for digits32 on a 2-core machine (see docs/usage.md, "
             "`Threads`); raise it for large bases on many cores.")
    return option(command)
