"""``adaptkit sample``, ``interpolate`` and ``morph``: pictures from fit run folders."""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import click
import torch

from ..bases import load_base
from ..device import select_device
from ..errors import ConfigError
from ..images import grid_image, save_gif, save_grid, save_images
from ..io.folder_lock import folder_lock
from ..io.image_folder import invert_images
from ..io.run_dir import refuse_run_file, trained_inverted
from ..morph import morph_runs
from ..sample import DEFAULT_ROWS, interpolate_run, require_positive, sample_images, sample_run
from . import cli
from .options import (RUN_CLASSES, base_options, class_value, console, latent_options, latent_source_option, open_run,
                      progress)


def writing_into(run_dir: str | None, target: Path) -> contextlib.AbstractContextManager:
    """The write lock of run folder ``run_dir`` when ``target`` lies inside it (else nothing): no
    picture is written into a run that ``fit`` or ``pull`` is rewriting."""
    if run_dir is None or Path(run_dir).resolve() not in target.resolve().parents:
        return contextlib.nullcontext()
    return folder_lock(run_dir)


def write_strips(strips: torch.Tensor, out: Path, gif: bool) -> str:
    """Save strips (R, steps, C, H, W) as a grid PNG (one row per strip) and, optionally, a GIF whose
    frame k shows every row's step k; returns what was written. Without ``gif``, a GIF of the same
    name left by an earlier call is removed: it would show other strips than the new PNG."""
    rows, steps = strips.shape[:2]
    save_grid(strips.flatten(0, 1), out, nrow=steps)
    written = f"{out} ({rows} row{'s' * (rows > 1)} × {steps} steps)"
    companion = out.with_suffix(".gif")
    if gif:
        nrow = math.ceil(math.sqrt(rows))
        frames = [grid_image(strips[:, k], nrow=nrow) for k in range(steps)]
        written += f" and {save_gif(frames, companion)}"
    elif companion.is_file():
        companion.unlink()
        written += f"; removed {companion} of an earlier call (--gif writes a new one)"
    return written


@cli.command("sample")
@click.argument("run_dir", metavar="[DIR]", required=False)
@click.option("-n", "count", default=16, show_default=True, help="Number of images.")
@latent_options(f"{RUN_CLASSES} (random classes for --base without DIR)")
@latent_source_option
@click.option("--out", type=click.Path(dir_okay=True), help="Output PNG (or folder with --each). Default: DIR/samples_<seed>.png.")
@click.option("--each", is_flag=True, help="Write one PNG per image into a folder instead of one grid.")
@click.option("--nrow", type=int, help="Images per grid row (default: a square grid).")
@base_options
def sample_command(run_dir, count, class_, seed, truncation, latent_source, out, each, nrow, base_spec, latent_dim,
                   num_classes, device, batch_size) -> None:
    """Draw random images from the adapted generator of run folder DIR (in the classes of its training
    images, unless --class is given), or from the unadapted base --base when no DIR is given (random
    classes; written to the current folder unless --out says where)."""
    require_positive(count, "-n (the number of images)")
    if run_dir is not None and out:
        refuse_run_file(out, run_dir, "--out")
    if run_dir is None and not base_spec:
        raise ConfigError("give a run folder DIR, or --base NAME to sample the unadapted base")
    if run_dir is None and latent_source != "normal":
        raise ConfigError(f"--latents {latent_source} needs a run folder DIR (the base alone has no learned latents)")
    folder = Path(run_dir) if run_dir is not None else Path(".")
    target = Path(out) if out else folder / (f"samples_{seed}" if each else f"samples_{seed}.png")
    with writing_into(run_dir, target):
        if run_dir is None:
            base = load_base(base_spec, latent_dim=latent_dim, num_classes=num_classes, device=select_device(device))
            with progress(count, "sampling") as on_batch:
                images = sample_images(base, count, truncation=truncation, class_id=class_value(class_), seed=seed,
                                       batch_size=batch_size, on_batch=on_batch)
        else:
            run = open_run(run_dir, base_spec, latent_dim, num_classes, device)
            with progress(count, "sampling") as on_batch:
                images = run.as_trained(sample_run(run, count, truncation=truncation, class_id=class_value(class_),
                                                   seed=seed, latents=latent_source, batch_size=batch_size,
                                                   on_batch=on_batch))
        if each:
            paths = save_images(images, target)
            console.print(f"wrote {len(paths)} images to {target}/")
        else:
            path = save_grid(images, target, nrow=nrow)
            console.print(f"wrote {path} ({count} images, seed {seed})")


@cli.command("interpolate")
@click.argument("run_dir", metavar="DIR")
@click.option("--steps", default=8, show_default=True, help="Images per row, ends included.")
@click.option("--rows", type=int, default=None,
              help=f"Number of rows (pairs of latents). Default {DEFAULT_ROWS}, or fewer when the run has fewer "
                   "consecutive pairs; more than it has is an error.")
@click.option("--pair", "pairs", type=(int, int), multiple=True, metavar="I J",
              help="Interpolate between learned latents I and J (repeatable; default: 0→1, 1→2, …).")
@click.option("--random", "random_", is_flag=True, help="Interpolate between random latents instead of learned ones.")
@latent_options(f"the learned latents' own classes; with --random, {RUN_CLASSES}")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Output PNG. Default: DIR/interpolation_learned.png or DIR/interpolation_random_<seed>.png.")
@click.option("--gif", is_flag=True, help="Also write an animated GIF next to the PNG.")
@base_options
def interpolate_command(run_dir, steps, rows, pairs, random_, class_, seed, truncation, out, gif, base_spec,
                        latent_dim, num_classes, device, batch_size) -> None:
    """Linear latent interpolation strips of run folder DIR (between its learned latents by default;
    with --random, between random latents in the classes of its training images unless --class is given)."""
    if out:
        refuse_run_file(out, run_dir, "--out")
    name = f"interpolation_random_{seed}.png" if random_ else "interpolation_learned.png"
    target = Path(out) if out else Path(run_dir) / name
    with writing_into(run_dir, target):
        run = open_run(run_dir, base_spec, latent_dim, num_classes, device)
        learned = len(run.latents) if run.latents is not None and not random_ else 0
        shown_rows = len(pairs) or rows or (min(DEFAULT_ROWS, max(learned - 1, 1)) if learned else DEFAULT_ROWS)
        with progress(steps * shown_rows, "interpolating") as on_batch:
            strips = run.as_trained(interpolate_run(run, steps, pairs=pairs, rows=rows, random=random_,
                                                    truncation=truncation, class_id=class_value(class_), seed=seed,
                                                    batch_size=batch_size, on_batch=on_batch))
        console.print(f"wrote {write_strips(strips, target, gif)}")


@cli.command("morph")
@click.argument("run_a", metavar="A")
@click.argument("run_b", metavar="B")
@click.option("--steps", default=8, show_default=True, help="Images per row, ends included.")
@click.option("--rows", default=4, show_default=True, help="Number of rows (latents).")
@click.option("--random", "random_", is_flag=True,
              help="One random latent per row at both ends instead of A's and B's learned latents.")
@latent_options(f"the learned latents' own classes; with --random, {RUN_CLASSES} (run A's)")
@click.option("--out", type=click.Path(dir_okay=False), help="Output PNG. Default: ./morph_<A>_<B>.png.")
@click.option("--gif", is_flag=True, help="Also write an animated GIF next to the PNG.")
@base_options
def morph_command(run_a, run_b, steps, rows, random_, class_, seed, truncation, out, gif, base_spec, latent_dim,
                  num_classes, device, batch_size) -> None:
    """Morph from run A's domain into run B's: blend their adapters (and latents), as in the BSA paper.

    A and B must be adaptations of the same base with the same adapter type, targets and options.
    """
    if out:
        for run in (run_a, run_b):
            refuse_run_file(out, run, "--out")
    dev = select_device(device)
    base = load_base(base_spec, latent_dim=latent_dim, num_classes=num_classes, device=dev) if base_spec else None
    with progress(steps * rows, "morphing") as on_batch:
        strips = morph_runs(run_a, run_b, steps, rows=rows, random=random_, truncation=truncation,
                            class_id=class_value(class_), seed=seed, base=base, device=dev, batch_size=batch_size,
                            on_batch=on_batch)
    inverted = {trained_inverted(run_a), trained_inverted(run_b)}
    if inverted == {True}:
        strips = invert_images(strips)
    elif len(inverted) > 1:
        console.print("[yellow]note:[/] one run trained on inverted images (fit --invert) and the other did not: "
                      "the morph is shown as the base draws (light on dark for digits32)")
    path = Path(out) if out else Path(f"morph_{Path(run_a).resolve().name}_{Path(run_b).resolve().name}.png")
    console.print(f"wrote {write_strips(strips, path, gif)}")
