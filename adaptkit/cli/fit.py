"""``adaptkit fit``: train an adapter on a folder of images (options generated from ``FitConfig``)."""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import typing
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError, TrainingInterrupted
from ..io.run_dir import (
    INTERPOLATION_PNG, LATENTS_NAME, LOG_CSV, LOSS_PNG, METRICS_PNG, NEAREST_PNG, RECONSTRUCTIONS_PNG, SAMPLES_PNG,
    SUMMARY_JSON, WEIGHTS_NAME,
)
from ..train.config import FIELDS, FitConfig, flag, read_config_file
from ..train.ddp import torchrun_processes
from ..train.loop import fit, resume_config
from . import cli, err_console
from .threads import threads_option

console = Console(highlight=False)
RUN_OUTPUTS = {"adapter": WEIGHTS_NAME, "latents": LATENTS_NAME, **{n: n for n in (
    SAMPLES_PNG, RECONSTRUCTIONS_PNG, INTERPOLATION_PNG, LOSS_PNG, METRICS_PNG, NEAREST_PNG, LOG_CSV)}}
"""What the report lists (a word or the file name) → the file that shows it was written."""
_HINTS = typing.get_type_hints(FitConfig)


class NumberOrWord(click.ParamType):
    """A number where the value parses as one, else the word (``--truncation 0.5`` / ``none``)."""

    name = "number|word"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return float(value)
        except (TypeError, ValueError):
            return value


def _click_type(name: str) -> Any:
    args = [a for a in typing.get_args(_HINTS[name]) or (_HINTS[name],) if a is not type(None)]
    if args == [float, str]:
        return NumberOrWord()
    return {int: int, float: float}.get(args[0], str)


def _option(f: dataclasses.Field) -> Callable:
    meta, decl = f.metadata, f"--{flag(f.name)}"
    kwargs: dict[str, Any] = {"help": meta["help"], "metavar": meta.get("metavar")}
    origin = typing.get_origin(_HINTS[f.name])
    if _HINTS[f.name] is bool:
        return click.option(decl, f.name, is_flag=True, default=f.default, **kwargs)
    if origin in (list, dict):
        return click.option(decl, f.name, multiple=True, **kwargs)
    kind = click.Choice(meta["choices"]) if "choices" in meta else _click_type(f.name)
    return click.option(decl, f.name, type=kind, default=f.default, show_default=f.default is not None, **kwargs)


def field_options(*names: str) -> Callable[[Callable], Callable]:
    """A decorator adding the ``FitConfig`` fields ``names`` as options (every field when none is named)."""
    fields = [FIELDS[n] for n in names] if names else list(FIELDS.values())

    def decorate(command: Callable) -> Callable:
        for f in reversed(fields):
            command = _option(f)(command)
        return command
    return decorate


def _parse_adapter_options(items: tuple[str, ...]) -> dict[str, Any]:
    options = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--adapter-option takes KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def given_settings(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line (not left at their defaults), as ``FitConfig`` values."""
    given = {k: v for k, v in options.items() if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    if "adapter_options" in given:
        given["adapter_options"] = _parse_adapter_options(given["adapter_options"])
    if "unfreeze" in given:
        given["unfreeze"] = list(given["unfreeze"])
    return given


def command_line(ctx: click.Context, given: dict[str, Any], config_file: str | None = None) -> str:
    """The command as it was given (defaults left out), recorded in the run's metadata."""
    parts = ["adaptkit", ctx.info_name or "fit"]
    if config_file:
        parts += ["--config", config_file]
    for name, value in given.items():
        if isinstance(value, bool):
            parts.append(f"--{flag(name)}")
        elif isinstance(value, dict):
            for key, v in value.items():
                parts += [f"--{flag(name)}", f"{key}={json.dumps(v)}"]
        else:
            for v in value if isinstance(value, list) else [value]:
                parts += [f"--{flag(name)}", str(v)]
    return shlex.join(parts)


def _report(out: Path) -> None:
    summary = json.loads((out / SUMMARY_JSON).read_text())
    first, final = summary["first_losses"] or {}, summary["final_losses"] or {}
    table = Table(title=f"{out}: {summary['steps']} steps, {summary['it_per_s']} it/s, "
                        f"{summary['wall_time_s']:.1f} s")
    table.add_column("loss")
    table.add_column(f"step {first.get('step', '-')}", justify="right")
    table.add_column(f"step {final.get('step', '-')}", justify="right")
    for key in final:
        if key not in ("step", "elapsed_s"):
            table.add_row(key, f"{first.get(key, float('nan')):.4g}", f"{final[key]:.4g}")
    console.print(table)
    written = [shown for shown, name in RUN_OUTPUTS.items() if (out / name).exists()]
    console.print(f"{', '.join(written)} and {SUMMARY_JSON} are in {out}")
    evaluation = summary.get("eval")
    if evaluation:
        best = evaluation["best"]
        console.print(f"best step by {evaluation['metric']}: {evaluation['best_step']} "
                      f"({evaluation['metric']} {best[evaluation['metric']]:.5g}, memorization ratio "
                      f"{best['memorization_ratio']:.3f}): the run's model; the last step's is in "
                      f"{out / evaluation['last_dir']}")


def train_and_report(train: Callable[[], Path]) -> Path | None:
    """Run ``train`` (a fit), exit with code 130 after Ctrl-C, and print the run's losses (on the
    main process). Returns the run folder there, else None."""
    try:
        out = train()
    except TrainingInterrupted as exc:
        err_console.print(f"[yellow]{escape(str(exc))}[/]", soft_wrap=True)
        sys.exit(130)
    if not torchrun_processes().main:
        return None
    _report(out)
    return out


@cli.command("fit", context_settings={"max_content_width": 110})
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file of settings; keys are these option names (e.g. lr-adapter = 0.05, class = 3, "
                   "[adapter-option] table). Options on the command line win.")
@field_options()
@threads_option
@click.pass_context
def fit_command(ctx: click.Context, config_file: str | None, **options: Any) -> None:
    """Adapt a frozen base generator to a folder of 25–100 images.

    Trains an adapter (default: bsa, the BSA paper's per-channel scale and shift) and one latent
    per image with the paper's loss (L1 pixel + λ_C perceptual + λ_z latent spread + the
    adapter's regularizer), or with --objective adversarial against the base's discriminator
    (or, for a base that ships none, one trained from scratch).
    With an adapter that adds classes (kpcbn), class folders that name no class of the base
    become the new classes. It writes a run folder: the adapter, latents.safetensors,
    samples.png, reconstructions.png, interpolation.png, loss.png, log.csv, summary.json and
    resumable checkpoints. Ctrl-C saves a checkpoint; --resume continues bit for bit. With
    --eval-every N it scores fixed samples every N steps (metrics.png, nearest.png) and keeps the
    best step's model, the last step's in last/.

    Data-parallel: torchrun --nproc-per-node N -m adaptkit fit ... (NCCL on GPUs, gloo on CPU).
    """
    given = given_settings(ctx, options)
    settings = {**(read_config_file(config_file) if config_file else {}), **given}
    if settings.get("resume"):
        out = settings.pop("out", None) or FitConfig.from_dict(settings).out_dir
        config = resume_config(out, **{k: v for k, v in settings.items() if k != "resume"})
    else:
        config = FitConfig.from_dict(settings)
    train_and_report(lambda: fit(config, command=command_line(ctx, given, config_file)))
