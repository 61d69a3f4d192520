"""``adaptkit eval``: KMMD, mean variance, FID, KID, LPIPS diversity and memorization of generated vs. real
images."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..device import select_device
from ..eval.diversity import DISTANCE_KINDS
from ..eval.features import EXTRACTOR_KINDS
from ..eval.report import evaluate
from ..io.image_folder import read_image_folder
from ..io.run_dir import is_run, refuse_run_file
from ..sample import sample_run
from . import cli
from .options import RUN_CLASSES, base_options, class_value, latent_options, latent_source_option, open_run, progress

console = Console(highlight=False)
DEFAULT_RUN_SAMPLES = 500


@cli.command("eval")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--real", "real_dir", required=True, type=click.Path(path_type=Path),
              help="Folder of real images (PNG/JPEG/WebP/BMP, searched recursively).")
@click.option("--train", "train_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of the images the generator was trained on, for the memorization score and the "
                   "intra-cluster LPIPS clusters (default: the --real images).")
@click.option("-n", "--num", type=click.IntRange(min=2), default=None,
              help=f"Run folder: samples to generate (default {DEFAULT_RUN_SAMPLES}). "
                   "Image folder: use at most N images, chosen at random (default all).")
@click.option("--features", type=click.Choice(EXTRACTOR_KINDS), default="auto", show_default=True,
              help="Feature extractor: Inception-v3 (auto: when its weights are in torchvision's cache; "
                   "`inception` downloads them there if missing), or the embedded one "
                   "(features_rgb32 for RGB images, features32 for gray).")
@click.option("--inception-weights", type=click.Path(path_type=Path), default=None,
              help="Inception-v3 state dict (.pth or .safetensors); default: torchvision's file in "
                   "$TORCH_HOME/hub/checkpoints.")
@click.option("--diversity", type=click.Choice(DISTANCE_KINDS), default="auto", show_default=True,
              help="LPIPS distance: the lpips package (auto: when AlexNet weights are in torchvision's cache; "
                   "`lpips` downloads them there if missing) or feature maps.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
@click.option("--nearest", "nearest_out", type=click.Path(path_type=Path), default=None,
              help="Also write a PNG of the 16 samples nearest to the training images, each beside its nearest "
                   "training image (e.g. nearest.png).")
@latent_source_option
@latent_options(f"run folder: {RUN_CLASSES}")
@base_options
def eval_command(
    folder: Path, real_dir: Path, train_dir: Path | None, num: int | None, features: str,
    inception_weights: Path | None, diversity: str, json_out: Path | None, nearest_out: Path | None,
    latent_source: str, class_: str | None, seed: int, truncation: str,
    base_spec: str | None, latent_dim: int | None, num_classes: int | None, device: str, batch_size: int,
) -> None:
    """Compare generated images with real ones: KMMD, mean variance, FID, KID, LPIPS diversity,
    intra-cluster LPIPS, and how near the samples are to the training images (memorization).

    FOLDER is a folder of generated images, or a fit run folder (an adapter or fine-tuned base
    weights) from which N samples are drawn, in the classes of the run's training images (in
    their proportions) unless --class is given; a run trained on inverted images (fit --invert)
    has the real images inverted too. The --base/--latent-dim/--num-classes/--truncation/--class/
    --latents options apply to run folders only. Fewer than 50 images in either set give a warning: the
    metrics are unreliable there (see docs/usage.md).
    """
    from_run = is_run(folder)
    for out, option in ((json_out, "--json"), (nearest_out, "--nearest")):
        if out is not None and from_run:
            refuse_run_file(out, folder, option)
    real = read_image_folder(real_dir)
    train = read_image_folder(train_dir) if train_dir is not None else None
    notes = []
    if from_run:
        run = open_run(str(folder), base_spec, latent_dim, num_classes, device)
        n = num or DEFAULT_RUN_SAMPLES
        with progress(n, "sampling") as on_batch:
            generated = sample_run(run, n, truncation=truncation, class_id=class_value(class_), seed=seed,
                                   latents=latent_source, batch_size=batch_size, on_batch=on_batch)
        if run.invert:
            real = run.as_trained(real)
            train = run.as_trained(train) if train is not None else None
            notes.append(f"{folder} trained on inverted images (fit --invert): the real images were inverted "
                         "too, so both sets are compared as the generator draws them")
    else:
        generated = read_image_folder(folder, limit=num, seed=seed)
    report = evaluate(generated, real, train=train, extractor=features, diversity=diversity,
                      inception_weights=inception_weights, nearest=nearest_out, seed=seed, batch_size=batch_size,
                      device=select_device(device), progress=True)
    report.notes[:0] = notes
    console.print(report.table())
    for note in report.notes:
        kind, _, text = note.partition(": ") if note.startswith("warning: ") else ("note", "", note)
        console.print(f"[yellow]{kind}:[/] {text}", soft_wrap=True)
    if json_out is not None:
        report.to_json(json_out)
        console.print(f"wrote {json_out}")
    if nearest_out is not None:
        console.print(f"wrote {nearest_out}")
