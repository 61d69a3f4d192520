"""``adaptkit adapters``, ``bases`` and ``inspect``: what is installed, and what an adapter would do."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ..bases import BaseSizes, base_sizes, list_bases, load_base
from ..core import AdapterHandle, adapter_class, attach_adapter, list_adapters
from ..core.registry import PluginInfo
from ..errors import TargetSelectionError
from ..io.loading import load_adapter
from . import cli
from .options import base_size_options

console = Console(highlight=False)


def plugin_table(title: str, rows: list[PluginInfo], extra: dict[str, list[str]] | None = None) -> Table:
    """One row per plugin; ``extra`` adds columns (name → one cell per row) before the status."""
    table = Table(title=title)
    extra = extra or {}
    table.add_column("name", no_wrap=True)
    for col in ("entry point", "distribution", "version", *extra, "status"):
        table.add_column(col)
    for i, row in enumerate(rows):
        status = f"[red]failed: {row.error}[/]" if row.error else "[green]ok[/]"
        cells = [column[i] for column in extra.values()]
        table.add_row(row.name, row.value, row.distribution or "-", row.version or "-", *cells, status)
    return table


@cli.command("adapters")
def adapters_command() -> None:
    """List the adapter plugins found through the ``adaptkit.adapters`` entry points."""
    console.print(plugin_table("adapter plugins", list_adapters()))


@cli.command("bases")
def bases_command() -> None:
    """List the base generators found through the ``adaptkit.bases`` entry points."""
    rows = list_bases()
    sizes = [base_sizes(row.name) for row in rows]
    console.print(plugin_table("bases", rows, {"makes": [_describe(s) for s in sizes]}))
    console.print("Any other generator: --base python:package.module:factory (a function returning an "
                  "nn.Module or an adaptkit Base).")


def _describe(sizes: BaseSizes | None) -> str:
    """``64×64 RGB, z 100`` (and ``, 1000 classes``): what a base declares it makes."""
    if sizes is None:
        return "-"
    colour = {1: "gray", 3: "RGB"}.get(sizes.channels, f"{sizes.channels}-channel")
    classes = f", {sizes.num_classes} classes" if sizes.num_classes else ""
    return f"{sizes.resolution}×{sizes.resolution} {colour}, z {sizes.latent_dim}{classes}"


@cli.command("inspect")
@click.argument("spec", metavar="BASE")
@click.option("--adapter", "-a", "adapters", multiple=True, help="Adapter(s) to show (default: every one that loads).")
@click.option("--load", "load_dir", type=click.Path(), help="Show a saved adapter folder instead (checked against BASE).")
@base_size_options
def inspect_command(spec: str, adapters: tuple[str, ...], load_dir: str | None, latent_dim: int | None,
                    num_classes: int | None) -> None:
    """Show the layers each adapter would attach to on BASE (with the options the base recommends
    for it), its parameter count and (where the adapter describes itself) its per-layer settings.

    BASE is a name from `adaptkit bases` or python:package.module:factory (a callable returning an
    nn.Module or an adaptkit Base).
    """
    base = load_base(spec, latent_dim=latent_dim, num_classes=num_classes)
    model = base.generator
    classes = [adapter_class(a) for a in adapters or sorted({r.name for r in list_adapters() if not r.error})]
    loaded = load_adapter(model, load_dir, name="inspect") if load_dir is not None else None
    total_base = sum(p.numel() for p in model.parameters())
    console.print(f"base [bold]{type(model).__name__}[/]: {total_base:,} parameters")
    if loaded is not None:
        _show(loaded, total_base)
        return
    for cls in dict.fromkeys(classes):  # aliases (bsa/film) name one class: show it once
        try:
            handle = attach_adapter(model, cls, name=f"inspect-{cls.name}", call=base.call,
                                    **base.adapter_options(cls))  # as fit would attach it
        except TargetSelectionError as exc:
            if adapters:  # asked for by name: an error
                raise
            console.print(f"{cls.name}: [dim]does not apply to this base ({exc})[/]")
            continue
        _show(handle, total_base)


def _show(handle: AdapterHandle, total_base: int) -> None:
    """Print one handle's targets and parameter counts, then detach it."""
    try:
        count = handle.num_parameters()
        table = Table(
            title=f"{handle.adapter_cls.name}: {len(handle.targets)} target layers, {count:,} parameters "
            f"({100 * count / max(total_base, 1):.3f}% of the base)"
        )
        table.add_column("layer")
        table.add_column("type")
        table.add_column("parameters", justify="right")
        rows = [(path, layer, adapter.extra_repr()) for path, layer, adapter in handle.layers()]
        details = any(extra for *_, extra in rows)  # per-layer settings, where the adapter describes itself
        if details:
            table.add_column("details")
        for (path, layer, extra), n in zip(rows, handle.parameter_counts().values()):
            table.add_row(path, type(layer).__name__, f"{n:,}", *([extra] if details else []))
        console.print(table)
    finally:
        handle.detach()
