"""Train the Features32 extractor: a small CNN classifying MNIST digits and Omniglot characters.

A stratified fraction of every class (--holdout) is kept out of training and used to report
accuracy. The weights and features32.json (with the held-out accuracies) go to --export.

    python examples/train_features.py --steps 1200 --threads 1
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from _train_utils import (
    command_line, file_md5, save_safetensors_atomic, training_progress, write_json_atomic,
)
from rich.console import Console

from adaptkit.bases.data32 import (
    MNIST_IMAGES, MNIST_LABELS, ImageSet, load_mnist, load_omniglot, split_per_class,
)
from adaptkit.bases.digits32_model import WEIGHTS_DIR
from adaptkit.bases.features_model import Features32

MODEL_KWARGS = {"widths": [24, 48, 96], "feature_dim": 128}


def load_glyphs(mnist: Path, omniglot: Path) -> tuple[ImageSet, int]:
    """MNIST (labels 0-9) followed by Omniglot (labels from 10 on), and the MNIST count."""
    digits = load_mnist(mnist)
    characters = load_omniglot(omniglot)
    glyphs = ImageSet(
        torch.cat([digits.images, characters.images]),
        torch.cat([digits.labels, characters.labels + len(digits.class_names)]),
        digits.class_names + characters.class_names,
    )
    return glyphs, len(digits)


def augment(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
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


@torch.no_grad()
def accuracy(model: Features32, data: ImageSet, batch_size: int = 500) -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = sum(
        (model(data.images[i : i + batch_size]).argmax(1) == data.labels[i : i + batch_size]).sum()
        for i in range(0, len(data), batch_size)
    )
    model.train()
    return float(correct) / len(data)


@click.command()
@click.option("--mnist", type=click.Path(file_okay=False, path_type=Path),
              default=Path("../shared/data/mnist-test"), show_default=True,
              help="Folder with the MNIST t10k IDX files.")
@click.option("--omniglot", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("../shared/data/omniglot/images_background_small1.zip"),
              show_default=True, help="Omniglot zip of alphabet/characterNN/*.png.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              default=WEIGHTS_DIR, show_default=True, help="Where the shipped weights go.")
@click.option("--steps", type=click.IntRange(1), default=1200, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True,
              help="Peak AdamW learning rate (cosine decay to 0).")
@click.option("--weight-decay", type=float, default=1e-4, show_default=True)
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Fraction of each class held out.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="torch CPU threads.")
@click.option("--log-every", type=click.IntRange(1), default=100, show_default=True)
def main(mnist: Path, omniglot: Path, export_dir: Path, steps: int, batch_size: int, lr: float,
         weight_decay: float, holdout: float, seed: int, threads: int, log_every: int) -> None:
    """Train Features32 on MNIST + Omniglot and export it with its held-out accuracy."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    console = Console()
    rng = torch.Generator().manual_seed(seed + 1)
    glyphs, n_mnist = load_glyphs(mnist, omniglot)
    train_index, held_index = split_per_class(glyphs.labels, holdout, rng)
    train = glyphs.subset(train_index)
    held_mnist = glyphs.subset(held_index[held_index < n_mnist])
    held_omniglot = glyphs.subset(held_index[held_index >= n_mnist])
    model = Features32(num_classes=len(glyphs.class_names), **MODEL_KWARGS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps,
                                                   pct_start=0.1)
    started = time.perf_counter()
    with training_progress(console) as progress:
        task = progress.add_task("features32", total=steps, stats="")
        for step in range(1, steps + 1):
            index = torch.randint(0, len(train), (batch_size,), generator=rng)
            loss = F.cross_entropy(model(augment(train.images[index], rng)), train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.update(task, advance=1, stats=f"loss {loss.item():.3f}")
            if step % log_every == 0:
                console.log(f"step {step}/{steps}  loss {loss.item():.3f}")
    train_seconds = time.perf_counter() - started
    scores = {"mnist": accuracy(model, held_mnist), "omniglot": accuracy(model, held_omniglot)}
    save_safetensors_atomic(model.state_dict(), export_dir / "features32.safetensors")
    write_json_atomic({
        "name": "features32",
        "model": {"num_classes": len(glyphs.class_names), **MODEL_KWARGS},
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": "(B, 1, 32, 32) in [-1, 1], white strokes on black",
        "features": "features(x): (B, feature_dim) after the last ReLU; feature_maps(x): the "
                    "three stage outputs before pooling",
        "weights": "float32",
        "classes": glyphs.class_names,
        "held_out_accuracy": {k: round(v, 4) for k, v in scores.items()},
        "held_out_images": {"mnist": len(held_mnist), "omniglot": len(held_omniglot)},
        "training": {"steps": steps, "batch_size": batch_size, "lr": lr,
                     "weight_decay": weight_decay, "holdout": holdout, "seed": seed,
                     "optimizer": "AdamW, one-cycle schedule", "augmentation":
                     "random rotation +-10 deg, scale 0.9-1.1, shift +-2 px",
                     "train_seconds": round(train_seconds, 1)},
        "data": {"name": "MNIST test set (t10k, 10 digits) + Omniglot images_background_small1 "
                         "(inverted, area-resized to 32x32)",
                 "images": len(glyphs),
                 "md5": file_md5(mnist / MNIST_IMAGES, mnist / MNIST_LABELS, omniglot)},
        "commands": [command_line()],
        "torch": torch.__version__,
    }, export_dir / "features32.json")
    console.log(f"held-out accuracy: MNIST {scores['mnist']:.4f}, Omniglot "
                f"{scores['omniglot']:.4f}; exported to {export_dir}")


if __name__ == "__main__":
    main()
