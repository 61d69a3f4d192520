"""Train a Features32 feature network: ``features32`` on grayscale glyphs (MNIST digits + Omniglot
characters) or ``features_rgb32`` on CIFAR-10 photos (``--dataset cifar10``).

glyphs: a stratified fraction of every class (--holdout) is kept out of training; cifar10: the
test split is. The top-1 accuracy on these held-out images goes with the weights into NAME.json
in --export. Every --checkpoint-every steps the training state (model, optimizer, schedule, RNG,
step) is written atomically to OUT/checkpoint.safetensors; --resume continues from it bit-exactly
(--stop-at splits a training into sessions). --limit keeps the first N images of each class
(smoke tests).

    python examples/train_features.py --steps 1200 --threads 1
    python examples/train_features.py --dataset cifar10 --threads 1
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import torch
import torch.nn.functional as F
from _train_utils import (
    command_line, file_md5, optimizer_from_safetensors, optimizer_to_safetensors, prefixed, read_checkpoint,
    save_safetensors_atomic, training_progress, unprefixed, write_json_atomic,
)
from rich.console import Console

from adaptkit.bases.data32 import (
    MNIST_IMAGES, MNIST_LABELS, ImageSet, load_image_tar, load_mnist, load_omniglot,
    split_per_class,
)
from adaptkit.bases.digits32_model import WEIGHTS_DIR
from adaptkit.bases.features_model import FEATURES32, FEATURES_RGB32, Features32

CHECKPOINT = "checkpoint.safetensors"
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def affine_jitter(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random rotation (+-10 deg), scale (0.9-1.1) and translation (+-2 px), black fill."""
    n = len(images)
    angle = (torch.rand(n, generator=rng) * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * torch.rand(n, generator=rng)
    shift = (torch.rand(n, 2, generator=rng) * 2 - 1) * (2 / 16)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, align_corners=False) - 1


def crop_and_flip(images: torch.Tensor, rng: torch.Generator, pad: int = 4) -> torch.Tensor:
    """A random crop of each image reflect-padded by ``pad`` pixels, mirrored with p = 0.5."""
    n, _, height, width = images.shape
    padded = F.pad(images, (pad,) * 4, mode="reflect").permute(0, 2, 3, 1)
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=rng)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=rng)
    mirror = torch.rand(n, 1, 1, generator=rng) < 0.5
    cols = torch.arange(width)
    cols = torch.where(mirror, width - 1 - cols, cols) + dx
    rows = torch.arange(height)[:, None] + dy
    return padded[torch.arange(n)[:, None, None], rows, cols].permute(0, 3, 1, 2)


@dataclass(frozen=True)
class Recipe:
    """What differs between the networks: model size, augmentation, defaults, precision."""

    name: str
    model_kwargs: dict[str, Any]
    augment: Augment
    augmentation: str
    input: str
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    bf16: bool
    """bf16 autocast on channels-last tensors (about 2x faster on CPUs with AVX-512 BF16);
    the weights stay float32."""


RECIPES = {
    "glyphs": Recipe(
        FEATURES32, {"widths": [24, 48, 96], "feature_dim": 128, "in_channels": 1},
        affine_jitter, "random rotation +-10 deg, scale 0.9-1.1, shift +-2 px",
        "(B, 1, 32, 32) in [-1, 1], white strokes on black",
        steps=1200, batch_size=128, lr=2e-3, weight_decay=1e-4, bf16=False),
    "cifar10": Recipe(
        FEATURES_RGB32, {"widths": [48, 96, 192], "feature_dim": 128, "in_channels": 3},
        crop_and_flip, "random 32x32 crop of the 4-px reflect-padded image, horizontal flip",
        "(B, 3, 32, 32) RGB in [-1, 1]",
        steps=3000, batch_size=128, lr=3e-3, weight_decay=5e-2, bf16=True),
}


@dataclass
class Data:
    """Training images, named held-out sets, and where they came from."""

    train: ImageSet
    held_out: dict[str, ImageSet]
    description: str
    md5: dict[str, str]


def glyph_data(mnist: Path, omniglot: Path, holdout: float, rng: torch.Generator) -> Data:
    """MNIST (labels 0-9) then Omniglot (labels from 10 on), ``holdout`` of each class held out."""
    digits = load_mnist(mnist)
    characters = load_omniglot(omniglot)
    glyphs = ImageSet(
        torch.cat([digits.images, characters.images]),
        torch.cat([digits.labels, characters.labels + len(digits.class_names)]),
        digits.class_names + characters.class_names,
    )
    train_index, held_index = split_per_class(glyphs.labels, holdout, rng)
    return Data(
        glyphs.subset(train_index),
        {"mnist": glyphs.subset(held_index[held_index < len(digits)]),
         "omniglot": glyphs.subset(held_index[held_index >= len(digits)])},
        "MNIST test set (t10k, 10 digits) + Omniglot images_background_small1 (inverted, "
        "area-resized to 32x32)",
        file_md5(mnist / MNIST_IMAGES, mnist / MNIST_LABELS, omniglot),
    )


def cifar10_data(tar: Path) -> Data:
    """The CIFAR-10 train split for training, its test split held out."""
    splits = load_image_tar(tar)
    return Data(splits["train"], {"cifar10_test": splits["test"]},
                "CIFAR-10 (JPEG copy, quality about 75): train split 50,000, test split 10,000",
                file_md5(tar))


def first_per_class(images: ImageSet, limit: int | None) -> ImageSet:
    """The first ``limit`` images of every class (all with None)."""
    if limit is None:
        return images
    keep = torch.cat([torch.nonzero(images.labels == c).squeeze(1)[:limit]
                      for c in images.labels.unique()])
    return images.subset(keep.sort().values)


@dataclass(frozen=True)
class Hyper:
    """Settings a resumed run must share with the run it continues."""

    dataset: str
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    holdout: float
    limit: int | None


@dataclass
class TrainState:
    """Everything training needs to continue exactly where it stopped."""

    model: Features32
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.OneCycleLR
    rng: torch.Generator
    step: int = 0
    train_seconds: float = 0.0
    commands: list[str] = field(default_factory=list)


def save_checkpoint(path: Path, state: TrainState, hp: Hyper) -> None:
    """Write the training state as one safetensors file (atomically)."""
    optimizer, groups = optimizer_to_safetensors(state.optimizer)
    tensors = {**prefixed("model", state.model.state_dict()), **prefixed("opt", optimizer),
               "rng": state.rng.get_state()}
    save_safetensors_atomic(tensors, path, {
        "step": str(state.step), "train_seconds": str(state.train_seconds),
        "commands": json.dumps(state.commands), "hyper": json.dumps(asdict(hp)),
        "groups": groups, "schedule": json.dumps(state.schedule.state_dict()),
    })


def load_checkpoint(path: Path, state: TrainState, hp: Hyper) -> None:
    """Restore ``state`` from :func:`save_checkpoint`'s file; the settings must match."""
    metadata, tensors = read_checkpoint(path, asdict(hp))
    state.model.load_state_dict(unprefixed("model", tensors))
    optimizer_from_safetensors(state.optimizer, unprefixed("opt", tensors), metadata["groups"])
    state.schedule.load_state_dict(json.loads(metadata["schedule"]))
    state.rng.set_state(tensors["rng"])
    state.step = int(metadata["step"])
    state.train_seconds = float(metadata["train_seconds"])
    state.commands = json.loads(metadata["commands"])


def train_step(state: TrainState, train: ImageSet, recipe: Recipe, batch_size: int) -> float:
    """One optimizer step on an augmented random batch; the loss."""
    index = torch.randint(0, len(train), (batch_size,), generator=state.rng)
    images = recipe.augment(train.images[index], state.rng)
    if recipe.bf16:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", torch.bfloat16, enabled=recipe.bf16):
        logits = state.model(images)
    loss = F.cross_entropy(logits.float(), train.labels[index])
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    state.schedule.step()
    state.step += 1
    return loss.item()


@torch.no_grad()
def accuracy(model: Features32, data: ImageSet, batch_size: int = 500) -> float:
    """Top-1 accuracy in eval mode, float32."""
    model.eval()
    correct = sum(
        (model(data.images[i : i + batch_size]).argmax(1) == data.labels[i : i + batch_size]).sum()
        for i in range(0, len(data), batch_size)
    )
    model.train()
    return float(correct) / len(data)


def export(state: TrainState, recipe: Recipe, hp: Hyper, data: Data, export_dir: Path,
           threads: int) -> dict[str, float]:
    """Write NAME.safetensors and NAME.json (held-out accuracy, provenance) to ``export_dir``."""
    started = time.perf_counter()
    scores = {name: accuracy(state.model, images) for name, images in data.held_out.items()}
    evaluate_seconds = time.perf_counter() - started
    model_kwargs = {"num_classes": len(data.train.class_names), **recipe.model_kwargs}
    save_safetensors_atomic(state.model.state_dict(), export_dir / f"{recipe.name}.safetensors")
    write_json_atomic({
        "name": recipe.name,
        "model": model_kwargs,
        "parameters": sum(p.numel() for p in state.model.parameters()),
        "input": recipe.input,
        "features": "features(x): (B, feature_dim) after the last ReLU; feature_maps(x): the "
                    "three stage outputs before pooling",
        "weights": "float32",
        "classes": data.train.class_names,
        "held_out_accuracy": {k: round(v, 4) for k, v in scores.items()},
        "held_out_images": {k: len(v) for k, v in data.held_out.items()},
        "training": {"steps": state.step, "batch_size": hp.batch_size, "lr": hp.lr,
                     "weight_decay": hp.weight_decay, "seed": hp.seed,
                     **({"holdout": hp.holdout} if hp.dataset == "glyphs" else {}),
                     "limit_per_class": hp.limit,
                     "optimizer": "AdamW, one-cycle schedule", "augmentation": recipe.augmentation,
                     "precision": "bf16 autocast, channels-last" if recipe.bf16 else "float32",
                     "threads": threads, "train_seconds": round(state.train_seconds, 1),
                     "evaluate_seconds": round(evaluate_seconds, 1)},
        "data": {"name": data.description, "images": len(data.train) + sum(
                     len(v) for v in data.held_out.values()), "md5": data.md5},
        "commands": state.commands,
        "torch": torch.__version__,
    }, export_dir / f"{recipe.name}.json")
    return scores


@click.command()
@click.option("--dataset", type=click.Choice(list(RECIPES)), default="glyphs", show_default=True,
              help="glyphs: features32 (MNIST + Omniglot, gray); cifar10: features_rgb32 (RGB).")
@click.option("--mnist", type=click.Path(file_okay=False, path_type=Path),
              default=Path("../shared/data/mnist-test"), show_default=True,
              help="glyphs: folder with the MNIST t10k IDX files.")
@click.option("--omniglot", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("../shared/data/omniglot/images_background_small1.zip"),
              show_default=True, help="glyphs: Omniglot zip of alphabet/characterNN/*.png.")
@click.option("--cifar10", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("../shared/data/cifar10/cifar10-jpg.tar.gz"), show_default=True,
              help="cifar10: tar of train/<class>/*.jpg and test/<class>/*.jpg.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder of the resumable checkpoint [default: runs/NAME].")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              default=WEIGHTS_DIR, show_default=True, help="Where the shipped weights go.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="[default: glyphs 1200, cifar10 3000]")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="[default: 128]")
@click.option("--lr", type=float, default=None,
              help="Peak AdamW learning rate, one-cycle schedule [default: glyphs 2e-3, cifar10 3e-3].")
@click.option("--weight-decay", type=float, default=None,
              help="[default: glyphs 1e-4, cifar10 5e-2]")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="glyphs: fraction of each class held out.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Use only the first N images of each class of each split (smoke tests).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="torch CPU threads.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=250, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=100, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.safetensors.")
@click.option("--stop-at", type=click.IntRange(1), default=None,
              help="Checkpoint and stop after this step, without exporting (continue with --resume).")
def main(dataset: str, mnist: Path, omniglot: Path, cifar10: Path, out: Path | None,
         export_dir: Path, steps: int | None, batch_size: int | None, lr: float | None,
         weight_decay: float | None, holdout: float, limit: int | None, seed: int, threads: int,
         checkpoint_every: int, log_every: int, resume: bool, stop_at: int | None) -> None:
    """Train a Features32 network and export it with its held-out accuracy."""
    recipe = RECIPES[dataset]
    hp = Hyper(dataset, steps or recipe.steps, batch_size or recipe.batch_size,
               recipe.lr if lr is None else lr,
               recipe.weight_decay if weight_decay is None else weight_decay, seed, holdout, limit)
    checkpoint = (out or Path("runs") / recipe.name) / CHECKPOINT
    if resume and not checkpoint.exists():
        raise click.UsageError(f"--resume: no checkpoint at {checkpoint}")
    if not resume and checkpoint.exists():
        raise click.UsageError(f"{checkpoint} exists: pass --resume or choose another --out")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    console = Console()
    rng = torch.Generator().manual_seed(seed + 1)
    started = time.perf_counter()
    data = (glyph_data(mnist, omniglot, holdout, rng) if dataset == "glyphs"
            else cifar10_data(cifar10))
    data.train = first_per_class(data.train, limit)
    data.held_out = {k: first_per_class(v, limit) for k, v in data.held_out.items()}
    console.log(f"read {len(data.train)} training images in {time.perf_counter() - started:.0f} s")
    model = Features32(num_classes=len(data.train.class_names), **recipe.model_kwargs)
    if recipe.bf16:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, hp.lr, total_steps=hp.steps,
                                                   pct_start=0.1)
    state = TrainState(model, optimizer, schedule, rng)
    if resume:
        load_checkpoint(checkpoint, state, hp)
        console.log(f"resumed from {checkpoint} at step {state.step}")
    state.commands.append(command_line())
    last = min(hp.steps, stop_at or hp.steps)
    started = time.perf_counter()
    with training_progress(console) as progress:
        task = progress.add_task(recipe.name, total=hp.steps, completed=state.step, stats="")
        while state.step < last:
            loss = train_step(state, data.train, recipe, hp.batch_size)
            progress.update(task, advance=1, stats=f"loss {loss:.3f}")
            if state.step % log_every == 0:
                console.log(f"step {state.step}/{hp.steps}  loss {loss:.3f}")
            if state.step % checkpoint_every == 0 or state.step == last:
                state.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                save_checkpoint(checkpoint, state, hp)
    if state.step < hp.steps:
        console.log(f"stopped at step {state.step}/{hp.steps}: continue with --resume")
        return
    scores = export(state, recipe, hp, data, export_dir, threads)
    console.log("held-out accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
                + f"; {state.train_seconds / 60:.1f} min of training; exported to {export_dir}")


if __name__ == "__main__":
    main()
