"""Pretrain the embedded Digits32 base: a class-conditional hinge-loss GAN on MNIST digits 0-7.

Every --checkpoint-every steps the full training state (G, D, EMA of G, optimizers, step, RNG
states) is written atomically to OUT/checkpoint.safetensors; --resume continues from it. At the
end the EMA generator (with re-estimated batch-norm statistics), the discriminator and
digits32.json are exported to --export, and a sample grid is drawn from the exported files.

    python examples/pretrain_base.py --steps 4000 --threads 1
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from _train_utils import (
    REPO_ROOT, command_line, file_md5, optimizer_from_safetensors, optimizer_to_safetensors,
    prefixed, read_checkpoint, save_safetensors_atomic, training_progress, unprefixed, write_json_atomic,
)
from rich.console import Console
from torch import nn
from torchvision.utils import save_image

from adaptkit.bases import truncated_normal
from adaptkit.bases.data32 import MNIST_IMAGES, MNIST_LABELS, ImageSet, load_mnist
from adaptkit.bases.digits32_model import (
    WEIGHTS_DIR, Digits32Discriminator, Digits32Generator, load_digits32,
)

CLASSES = [str(d) for d in range(8)]
GENERATOR_KWARGS = {
    "latent_dim": 64, "num_classes": len(CLASSES), "ch": 24, "channel_mult": [4, 4, 2, 1],
}
DISCRIMINATOR_KWARGS = {"num_classes": len(CLASSES), "ch": 24, "channel_mult": [1, 2, 4, 4]}
CHECKPOINT = "checkpoint.safetensors"
BATCHNORM_BATCHES = 50


@dataclass(frozen=True)
class Hyper:
    """Hyperparameters a resumed run must share with the run it continues."""

    seed: int
    batch_size: int
    d_steps: int
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    ema_decay: float
    latent_shrink: float


@dataclass
class GanState:
    """Everything training needs to continue exactly where it stopped."""

    generator: Digits32Generator
    discriminator: Digits32Discriminator
    ema: Digits32Generator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise_rng: torch.Generator
    data_rng: torch.Generator
    step: int = 0
    train_seconds: float = 0.0
    commands: list[str] = field(default_factory=list)


def new_state(hp: Hyper) -> GanState:
    """Freshly initialised models and optimizers, seeded by ``hp.seed``."""
    torch.manual_seed(hp.seed)
    generator = Digits32Generator(**GENERATOR_KWARGS)
    discriminator = Digits32Discriminator(**DISCRIMINATOR_KWARGS)
    return GanState(
        generator=generator,
        discriminator=discriminator,
        ema=copy.deepcopy(generator).requires_grad_(False),
        opt_g=torch.optim.Adam(generator.parameters(), lr=hp.lr_g, betas=hp.betas),
        opt_d=torch.optim.Adam(discriminator.parameters(), lr=hp.lr_d, betas=hp.betas),
        noise_rng=torch.Generator().manual_seed(hp.seed + 1),
        data_rng=torch.Generator().manual_seed(hp.seed + 2),
    )


def save_checkpoint(path: Path, state: GanState, hp: Hyper) -> None:
    """Write the full training state as one safetensors file (atomically)."""
    opt_g, groups_g = optimizer_to_safetensors(state.opt_g)
    opt_d, groups_d = optimizer_to_safetensors(state.opt_d)
    tensors = {
        **prefixed("G", state.generator.state_dict()),
        **prefixed("D", state.discriminator.state_dict()),
        **prefixed("ema", state.ema.state_dict()),
        **prefixed("opt_g", opt_g),
        **prefixed("opt_d", opt_d),
        "rng.noise": state.noise_rng.get_state(),
        "rng.data": state.data_rng.get_state(),
    }
    metadata = {
        "step": str(state.step), "train_seconds": str(state.train_seconds),
        "commands": json.dumps(state.commands), "hyper": json.dumps(asdict(hp)),
        "groups_g": groups_g, "groups_d": groups_d,
    }
    save_safetensors_atomic(tensors, path, metadata)


def load_checkpoint(path: Path, state: GanState, hp: Hyper) -> None:
    """Restore ``state`` from :func:`save_checkpoint`'s file; the hyperparameters must match."""
    metadata, tensors = read_checkpoint(path, asdict(hp))
    state.generator.load_state_dict(unprefixed("G", tensors))
    state.discriminator.load_state_dict(unprefixed("D", tensors))
    state.ema.load_state_dict(unprefixed("ema", tensors))
    optimizer_from_safetensors(state.opt_g, unprefixed("opt_g", tensors), metadata["groups_g"])
    optimizer_from_safetensors(state.opt_d, unprefixed("opt_d", tensors), metadata["groups_d"])
    state.noise_rng.set_state(tensors["rng.noise"])
    state.data_rng.set_state(tensors["rng.data"])
    state.step = int(metadata["step"])
    state.train_seconds = float(metadata["train_seconds"])
    state.commands = json.loads(metadata["commands"])


def sample_latents(
    batch_size: int, generator: Digits32Generator, rng: torch.Generator, shrink: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform class ids and standard-normal latents, a ``shrink`` fraction of which is scaled
    by U(0, 1): training on such latents keeps truncated (small) latents sharp."""
    z = torch.randn(batch_size, generator.latent_dim, generator=rng)
    shrunk = torch.rand(batch_size, 1, generator=rng) < shrink
    z = torch.where(shrunk, z * torch.rand(batch_size, 1, generator=rng), z)
    return z, torch.randint(0, generator.num_classes, (batch_size,), generator=rng)


def train_step(state: GanState, hp: Hyper, data: ImageSet) -> tuple[float, float]:
    """``hp.d_steps`` discriminator updates, one generator update, one EMA update (hinge loss)."""
    G, D = state.generator, state.discriminator
    D.requires_grad_(True)
    for _ in range(hp.d_steps):
        index = torch.randint(0, len(data), (hp.batch_size,), generator=state.data_rng)
        z, y = sample_latents(hp.batch_size, G, state.noise_rng, hp.latent_shrink)
        with torch.no_grad():
            fake = G(z, y)
        loss_d = (F.relu(1 - D(data.images[index], data.labels[index])).mean()
                  + F.relu(1 + D(fake, y)).mean())
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        state.opt_d.step()
    D.requires_grad_(False)
    z, y = sample_latents(hp.batch_size, G, state.noise_rng, hp.latent_shrink)
    loss_g = -D(G(z, y), y).mean()
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    state.opt_g.step()
    update_ema(state.ema, G, min(hp.ema_decay, (1 + state.step) / (10 + state.step)))
    state.step += 1
    return loss_d.item(), loss_g.item()


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """Exponential moving average of the parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


@torch.no_grad()
def recalibrate_batchnorm(generator: Digits32Generator, batches: int, batch_size: int,
                          shrink: float, rng: torch.Generator) -> None:
    """Replace the running batch-norm statistics by their plain average over ``batches`` fresh
    batches of training latents ("standing statistics"), so that eval mode matches the EMA
    weights."""
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    generator.train()
    for _ in range(batches):
        generator(*sample_latents(batch_size, generator, rng, shrink))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


@torch.no_grad()
def save_sample_grid(generator: Digits32Generator, path: Path, truncation: float, seed: int,
                     columns: int = 8) -> None:
    """One row per class, ``columns`` truncated-normal samples each, upscaled 2x."""
    rng = torch.Generator().manual_seed(seed)
    y = torch.arange(generator.num_classes).repeat_interleave(columns)
    z = truncated_normal(len(y), generator.latent_dim, truncation, generator=rng)
    images = F.interpolate(generator.eval()(z, y), scale_factor=2, mode="nearest")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images * 0.5 + 0.5, path, nrow=columns, padding=4, pad_value=0.5)


def export(state: GanState, hp: Hyper, data: ImageSet, data_md5: dict[str, str],
           export_dir: Path, grid: Path, truncation: float) -> None:
    """Write the shipped weights and metadata, then draw the sample grid from those files."""
    generator = copy.deepcopy(state.ema)
    recalibrate_batchnorm(generator, BATCHNORM_BATCHES, hp.batch_size, hp.latent_shrink,
                          torch.Generator().manual_seed(hp.seed + 3))
    save_safetensors_atomic(generator.state_dict(), export_dir / "digits32_generator.safetensors")
    save_safetensors_atomic(state.discriminator.state_dict(),
                            export_dir / "digits32_discriminator.safetensors")
    write_json_atomic({
        "name": "digits32",
        "generator": GENERATOR_KWARGS,
        "discriminator": DISCRIMINATOR_KWARGS,
        "classes": CLASSES,
        "resolution": Digits32Generator.resolution,
        "channels": Digits32Generator.channels,
        "parameters": {
            "generator": _count(generator), "discriminator": _count(state.discriminator),
        },
        "weights": "float32; generator = EMA of the generator weights, batch-norm statistics "
                   f"re-estimated over {BATCHNORM_BATCHES} batches of training latents",
        "training": {**asdict(hp), "steps": state.step, "loss": "hinge",
                     "optimizer": "Adam", "train_seconds": round(state.train_seconds, 1)},
        "data": {"name": "MNIST test set (t10k), digits 0-7, zero-padded to 32x32",
                 "images": len(data), "md5": data_md5},
        "commands": state.commands,
        "sample_grid": {"truncation": truncation, "seed": hp.seed},
        "torch": torch.__version__,
    }, export_dir / "digits32.json")
    shipped, _, _ = load_digits32(export_dir)
    save_sample_grid(shipped, grid, truncation, hp.seed)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@click.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              default=Path("../shared/data/mnist-test"), show_default=True,
              help="Folder with the MNIST t10k IDX files.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/digits32"), show_default=True,
              help="Run folder: resumable checkpoint and progress samples.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              default=WEIGHTS_DIR, show_default=True, help="Where the shipped weights go.")
@click.option("--grid", type=click.Path(dir_okay=False, path_type=Path),
              default=REPO_ROOT / "docs" / "images" / "digits32_samples.png", show_default=True,
              help="Sample grid PNG drawn from the exported weights.")
@click.option("--steps", type=click.IntRange(1), default=4000, show_default=True,
              help="Total generator steps (a resumed run trains up to this count).")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--d-steps", type=click.IntRange(1), default=1, show_default=True,
              help="Discriminator steps per generator step.")
@click.option("--lr-g", type=float, default=2e-4, show_default=True)
@click.option("--lr-d", type=float, default=2e-4, show_default=True)
@click.option("--ema-decay", type=float, default=0.999, show_default=True)
@click.option("--latent-shrink", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Fraction of training latents scaled by U(0, 1), so that truncated latents "
                   "give sharp samples.")
@click.option("--truncation", type=float, default=0.4, show_default=True,
              help="Latent truncation threshold of the sample grid.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="torch CPU threads.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=250, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=50, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.safetensors.")
def main(data: Path, out: Path, export_dir: Path, grid: Path, steps: int, batch_size: int,
         d_steps: int, lr_g: float, lr_d: float, ema_decay: float, latent_shrink: float,
         truncation: float, seed: int, threads: int, checkpoint_every: int, log_every: int,
         resume: bool) -> None:
    """Pretrain the Digits32 base GAN on MNIST digits 0-7 and export it."""
    torch.set_num_threads(threads)
    console = Console()
    hp = Hyper(seed, batch_size, d_steps, lr_g, lr_d, (0.0, 0.999), ema_decay, latent_shrink)
    checkpoint = out / CHECKPOINT
    state = new_state(hp)
    if resume:
        if not checkpoint.exists():
            raise click.UsageError(f"--resume: no checkpoint at {checkpoint}")
        load_checkpoint(checkpoint, state, hp)
        console.log(f"resumed from {checkpoint} at step {state.step}")
    elif checkpoint.exists():
        raise click.UsageError(f"{checkpoint} exists: pass --resume or choose another --out")
    state.commands.append(command_line())
    images = load_mnist(data, digits=range(len(CLASSES)))
    started = time.perf_counter()
    with training_progress(console) as progress:
        task = progress.add_task("digits32", total=steps, completed=state.step, stats="")
        while state.step < steps:
            loss_d, loss_g = train_step(state, hp, images)
            stats = f"D {loss_d:.3f}  G {loss_g:+.3f}"
            progress.update(task, advance=1, stats=stats)
            if state.step % log_every == 0:
                console.log(f"step {state.step}/{steps}  {stats}")
            if state.step % checkpoint_every == 0 or state.step == steps:
                state.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                save_checkpoint(checkpoint, state, hp)
                save_sample_grid(state.ema, out / "samples.png", truncation, seed)
    md5 = file_md5(data / MNIST_IMAGES, data / MNIST_LABELS)
    export(state, hp, images, md5, export_dir, grid, truncation)
    console.log(f"exported to {export_dir} after {state.step} steps "
                f"({state.train_seconds / 60:.1f} min of training); grid: {grid}")


if __name__ == "__main__":
    main()
