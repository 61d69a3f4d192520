"""`fit --objective adversarial` and class extension with kpcbn: D and G train, the base's tensors
stay, new classes come from class folders, old classes stay bitwise, resume is bitwise."""
import copy
import csv
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import parametrize

from adaptkit.bases import Base, load_base
from adaptkit.bases.digits32_model import WEIGHTS_DIR
from adaptkit.errors import ConfigError, TrainingInterrupted
from adaptkit.io.run_dir import load_run
from adaptkit.train import AdversarialObjective, FitConfig, fit, resume_config
from adaptkit.train.ddp import torchrun_processes
from adaptkit.train.loop import Trainer
from adaptkit.train.plan import plan_fit
from adaptkit.train.objectives import hinge_d_loss, hinge_g_loss
from adaptkit.train.objectives.adversarial import extend_projection
from adaptkit.train.progress import SilentReporter
from adaptkit.train.scratch_discriminator import ScratchDiscriminator, scratch_discriminator
from clitools import invoke, one_line_error
from imagefolder import blob_images, write_images
from models import tiny_cond_generator
from runs import interrupt_on_call

OLD = torch.arange(8)  # digits32's classes


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Class folders 8/ and 9/ (new classes of digits32) and 3/ (an old one), 4 gray images each."""
    root = tmp_path_factory.mktemp("digits")
    for i, name in enumerate(("8", "9", "3")):
        write_images(root / name, blob_images(4, resolution=32, seed=i)[:, :1])
    return root


def new_only(root, tmp_path):
    """The same data without the old class 3."""
    folder = tmp_path / "new"
    for name in ("8", "9"):
        write_images(folder / name, blob_images(4, resolution=32, seed=int(name))[:, :1])
    return folder


def config(data, out, **changes) -> FitConfig:
    settings = dict(data=str(data), out=str(out), adapter="kpcbn", objective="adversarial", steps=3, log_every=1,
                    checkpoint_every=3, samples=8, quiet=True)
    return FitConfig(**{**settings, **changes})


def trained(cfg: FitConfig) -> Trainer:
    trainer = Trainer(plan_fit(cfg, torch.device("cpu")), torchrun_processes(), None, SilentReporter())
    trainer.setup()
    judge = getattr(trainer.objective, "discriminator", nn.Identity())
    trainer.start_state = {n: p.detach().clone() for n, p in judge.named_parameters()}
    trainer.start_adapter = {n: p.detach().clone() for n, p in (trainer.handle.named_parameters()
                                                                if trainer.handle else [])}
    trainer.train()
    trainer.finish()
    return trainer


def fixed_outputs(base: Base, labels: torch.Tensor) -> torch.Tensor:
    z = torch.randn(len(labels), base.latent_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return base.generate(z, labels)


def changed(before: dict, module: nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters() if n in before and not torch.equal(before[n], p)]


def test_hinge_terms():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    d_real, d_fake = hinge_d_loss(real, fake)
    assert d_real.item() == pytest.approx(2.5 / 3) and d_fake.item() == pytest.approx(1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)


class ToyD(nn.Module):
    """D(x, y) = w · mean(x) + b."""

    def __init__(self) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.tensor(2.0)), nn.Parameter(torch.tensor(0.25))

    def forward(self, x, y):
        return self.w * x.flatten(1).mean(1) + self.b


def test_the_objective_on_a_toy_discriminator():
    base = Base("toy", tiny_cond_generator(), latent_dim=16, resolution=16, channels=3, num_classes=4,
                discriminator=ToyD())
    images = torch.linspace(-1, 1, 4)[:, None, None, None].expand(4, 3, 16, 16).contiguous()
    objective = AdversarialObjective(base, images, torch.zeros(4, dtype=torch.long),
                                     FitConfig(lr_discriminator=0.1, batch_size=2, augment="off"), None,
                                     torch.Generator().manual_seed(0))
    fake = torch.full((2, 3, 16, 16), 0.5)
    objective._fakes = lambda: (fake, torch.zeros(2, dtype=torch.long))
    index = torch.tensor([0, 3])  # real means -1 and 1: D = -1.75, 2.25
    terms = objective.auxiliary_step(index)
    assert terms["d_real"].item() == pytest.approx((2.75 + 0.0) / 2) and terms["d_fake"].item() == pytest.approx(2.25)
    w, b = objective.discriminator.w.item(), objective.discriminator.b.item()
    assert w != 2.0 and b < 0.25  # Adam moved D against the fakes
    assert not any(p.requires_grad for p in objective.discriminator.parameters())
    assert objective.loss(index)["g_hinge"].item() == pytest.approx(-(w * 0.5 + b))
    assert base.discriminator.w.item() == 2.0  # a copy is trained


def test_new_projection_rows_are_spectrally_normalised_with_the_old():
    d = load_base("digits32").discriminator
    wide = copy.deepcopy(d)
    extend_projection(wide, 10)
    assert parametrize.is_parametrized(wide.embed, "weight")  # one spectral norm over all 10 rows
    raw_old = d.embed.parametrizations.weight.original
    raw = wide.embed.parametrizations.weight.original
    assert raw.shape == (10, raw_old.shape[1]) and torch.equal(raw[:8], raw_old)
    table = wide.embed.weight  # eval mode: W / σ from the stored power-iteration vectors
    assert torch.linalg.matrix_norm(table.detach(), ord=2).item() == pytest.approx(1.0, abs=1e-3)
    scale = torch.linalg.matrix_norm(raw_old.detach(), ord=2) / torch.linalg.matrix_norm(raw.detach(), ord=2)
    assert scale < 1  # the two rows added to the table raise its σ
    base_rows = d.embed.weight
    expected = torch.cat([base_rows, base_rows.mean(0).expand(2, -1)]) * scale
    assert torch.allclose(table, expected, atol=1e-4)  # the base's rows and their mean, at one scale

    x = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    h = nn.functional.relu(d.blocks(x)).sum((2, 3))
    y = torch.tensor([0, 3, 8, 9])
    before = wide(x, y)
    assert torch.allclose(before, d.linear(h).squeeze(1) + (table[y] * h).sum(1), atol=1e-4)
    with torch.no_grad():
        raw[9] += 1  # the raw rows are what the discriminator's optimizer trains
    assert (wide(x, y)[3] - before[3]).abs() > 1e-3


def test_kpcbn_adversarial_trains_d_and_the_adapter_and_keeps_the_base(tmp_path, digits):
    reference = load_base("digits32")
    base_old = fixed_outputs(reference, OLD)
    trainer = trained(config(digits, tmp_path / "run"))
    objective, base = trainer.objective, trainer.base
    assert changed(trainer.start_state, objective.discriminator)
    assert sorted({n.split(".")[0] for n in changed(trainer.start_adapter, trainer.handle)}) == ["adapters"]
    shipped = load_file(str(WEIGHTS_DIR / "digits32_discriminator.safetensors"))
    assert all(torch.equal(base.discriminator.state_dict()[k], v) for k, v in shipped.items())
    assert all(torch.equal(p, reference.generator.state_dict()[n]) for n, p in base.generator.state_dict().items())
    assert base.class_names[-2:] == ["8", "9"] and sorted(set(objective.labels.tolist())) == [3, 8, 9]
    assert torch.equal(fixed_outputs(base, OLD), base_old)

    run = load_run(trainer.out)
    assert run.base.class_names[-2:] == ["8", "9"] and run.latents is None
    assert torch.equal(fixed_outputs(run.base, OLD), base_old)
    with open(trainer.out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "elapsed_s", "total", "g_hinge", "adapter_reg", "similarity_l1", "residual_l2",
                             "d_real", "d_fake"]
    assert float(rows[0]["similarity_l1"]) == pytest.approx(12 / 8)  # Σ mean|S| over 12 tables at S = 1/8
    assert float(rows[0]["residual_l2"]) == 0 and float(rows[-1]["residual_l2"]) > 0  # r starts at 0
    for row in rows:
        assert float(row["adapter_reg"]) == pytest.approx(0.01 * float(row["similarity_l1"])
                                                          + 0.01 * float(row["residual_l2"]))
    assert (trainer.out / "samples.png").is_file() and not (trainer.out / "reconstructions.png").exists()


@pytest.mark.parametrize("changes", [dict(adapter="bsa"), dict(adapter="pwgconv"),
                                     dict(adapter="none", unfreeze=["all"])])
def test_any_adapter_and_transfergan(tmp_path, digits, changes):
    old_only = tmp_path / "threes"
    write_images(old_only / "3", blob_images(4, resolution=32)[:, :1])
    reference = load_base("digits32")
    trainer = trained(config(old_only, tmp_path / "run", steps=2, **changes))
    assert changed(trainer.start_state, trainer.objective.discriminator)
    if trainer.handle is not None:
        assert changed(trainer.start_adapter, trainer.handle)
    moved = [n for n, p in trainer.base.generator.named_parameters()
             if not torch.equal(p, dict(reference.generator.named_parameters())[n])]
    assert bool(moved) == (changes["adapter"] == "none")


def test_glo_with_kpcbn_and_the_bsa_row(tmp_path, digits):
    trainer = trained(config(new_only(digits, tmp_path), tmp_path / "run", objective="glo", perceptual="none",
                             adapter_options={"propagate": False}))
    for adapter in trainer.handle.adapters.values():
        for prop in adapter.propagation.values():
            assert torch.equal(prop.scores, torch.full_like(prop.scores, 1 / 8))
            assert not prop.residual.eq(0).all()
    tables = dict(load_base("digits32").generator.named_parameters())
    first = next(iter(trainer.handle.adapters.values()))
    assert torch.equal(first.propagation["gamma"].prior, tables["blocks.0.bn1.gamma.weight"])
    assert (trainer.out / "reconstructions.png").is_file() and load_run(trainer.out).base.num_classes == 10


@pytest.mark.slow
@pytest.mark.parametrize("discriminator", ["auto", "scratch"])
def test_resume_is_bitwise(tmp_path, digits, monkeypatch, discriminator):
    reference = fit(config(digits, tmp_path / "full", steps=5, checkpoint_every=2, discriminator=discriminator))
    interrupt_on_call(monkeypatch, AdversarialObjective, 3)
    with pytest.raises(TrainingInterrupted):
        fit(config(digits, tmp_path / "cut", steps=5, checkpoint_every=2, discriminator=discriminator))
    monkeypatch.undo()
    resumed = fit(resume_config(tmp_path / "cut"))
    for name in ("adapter_model.safetensors", "checkpoints/step-0000005.safetensors"):
        a, b = load_file(str(reference / name)), load_file(str(resumed / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert any(k.startswith("objective/discriminator.") for k in a) and any(k.startswith("aux/") for k in a)
    assert any(k.startswith("ema/adapter/") for k in a)  # the default: EMA and augmentation on





def test_cli_samples_a_new_class_by_name(tmp_path, digits):
    out = tmp_path / "run"
    result = invoke("fit", "--data", new_only(digits, tmp_path), "--out", out, "--adapter", "kpcbn",
                     "--objective", "adversarial", "--steps", "2", "--samples", "8", "--quiet")
    assert result.exit_code == 0, result.output
    result = invoke("sample", out, "-n", "4", "--class", "9", "--out", tmp_path / "nines.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "nines.png").is_file()
    one_line_error(invoke("sample", out, "-n", "4", "--class", "10"), "out of range for base digits32 (10 classes)")


@pytest.mark.parametrize("args, message", [
    (["--base", "python:models:tiny_cond_generator", "--class", "1", "--discriminator", "base"],
     "has no discriminator: train one from scratch with --discriminator scratch, or use --objective glo"),
    (["--discriminator", "scratch", "--freeze-d", "1"],
     "--freeze-d 1 keeps pretrained discriminator blocks, and a discriminator trained from scratch has none"),
    (["--adapter", "kpcbn", "--adapter-option", "num_new_classes=3"],
     "the kpcbn adapter's options add 3 class(es), but 2 class folder(s)"),
    (["--perceptual", "base"], "--objective adversarial uses no perceptual loss"),
])
def test_clear_errors(tmp_path, digits, args, message):
    data = new_only(digits, tmp_path) if "kpcbn" in args else tmp_path / "flat"
    if data == tmp_path / "flat":
        write_images(data / "3", blob_images(2, resolution=32)[:, :1])
    result = invoke("fit", "--data", data, "--out", tmp_path / "run", "--objective", "adversarial",
                     "--steps", "1", "--quiet", *args)
    one_line_error(result, message)


@pytest.fixture
def threes(tmp_path):
    folder = tmp_path / "threes"
    write_images(folder / "3", blob_images(4, resolution=32)[:, :1])
    return folder


@pytest.mark.parametrize("frozen", [0, 2])
def test_freeze_d_keeps_the_first_blocks_bitwise(tmp_path, threes, frozen):
    cfg = config(threes, tmp_path / "run", adapter="bsa", freeze_d=frozen)
    trainer = Trainer(plan_fit(cfg, torch.device("cpu")), torchrun_processes(), None, SilentReporter())
    trainer.setup()
    judge = trainer.objective.discriminator
    before = {k: v.clone() for k, v in judge.state_dict().items()}
    trainer.train()
    after = judge.state_dict()
    moved = {k.split(".")[1] for k in before if k.startswith("blocks.") and not torch.equal(before[k], after[k])}
    assert moved == {str(b) for b in range(frozen, 4)}  # parameters and spectral-norm vectors alike
    assert not torch.equal(before["linear.parametrizations.weight.original"],
                           after["linear.parametrizations.weight.original"])
    trained_d = trainer.objective.d_optimizer.param_groups[0]["params"]
    frozen_params = [p for b in judge.blocks[:frozen] for p in b.parameters()]
    assert len(trained_d) + len(frozen_params) == len(list(judge.parameters()))


def test_outputs_come_from_the_moving_average(tmp_path, threes, monkeypatch):
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    y = torch.full((4,), 3)
    drawn = []

    def pictures(out, base, *args, **kwargs):
        with torch.no_grad():
            drawn.append(base.generate(z, y))

    monkeypatch.setattr("adaptkit.train.loop.write_pictures", pictures)
    trainer = trained(config(threes, tmp_path / "run", adapter="bsa", steps=4, ema_decay=0.5))
    live = dict(trainer.handle.named_parameters())
    average = {name: trainer.ema.average[f"adapter/{i}"] for i, name in enumerate(live)}
    saved = load_file(str(trainer.out / "adapter_model.safetensors"))
    assert saved.keys() == live.keys() and all(torch.equal(saved[n], average[n]) for n in live)
    assert not all(torch.equal(saved[n], live[n]) for n in live)
    with torch.no_grad():
        raw = trainer.base.generate(z, y)
        with trainer.ema.applied():
            smoothed = trainer.base.generate(z, y)
    assert torch.equal(drawn[0], smoothed) and not torch.equal(drawn[0], raw)
    summary = json.loads((trainer.out / "summary.json").read_text())
    assert summary["ema_decay"] == 0.5 and summary["augment"] == ["color", "translation", "cutout"]


def test_options_from_the_config_file_and_the_command_line(tmp_path, threes):
    toml = tmp_path / "fit.toml"
    toml.write_text('objective = "adversarial"\naugment = "color,cutout"\nfreeze-d = 1\nema-decay = 0.9\n')
    result = invoke("fit", "--config", toml, "--data", threes, "--out", tmp_path / "run", "--augment", "translation",
                    "--steps", "1", "--samples", "8", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["augment"], summary["freeze_d"], summary["ema_decay"]) == (["translation"], 1, 0.9)
    assert "--augment translation" in summary["training"]["command"]
    help_text = invoke("fit", "--help").output
    assert all(flag in help_text for flag in ("--augment", "--freeze-d", "--ema-decay"))


@pytest.mark.parametrize("args, message", [
    (["--objective", "adversarial", "--freeze-d", "5"], "--freeze-d 5: the base's discriminator has 4 blocks"),
    (["--objective", "adversarial", "--augment", "flip"], "--augment takes on, off or a comma-separated list"),
    (["--augment", "on"], "--augment is a setting of the adversarial objective's discriminator: it needs --objective adversarial"),
    (["--freeze-d", "1"], "--freeze-d is a setting of the adversarial objective's discriminator"),
    (["--discriminator", "scratch"], "--discriminator is a setting of the adversarial objective's discriminator"),
    (["--ema-decay", "1"], "--ema-decay must be in [0, 1) (0: off), got 1.0"),
])
def test_clear_errors_of_the_new_options(tmp_path, threes, args, message):
    one_line_error(invoke("fit", "--data", threes, "--out", tmp_path / "run", "--steps", "1", "--quiet", *args),
                   message)


@pytest.mark.parametrize("resolution, conditional, blocks", [(64, False, 4), (32, True, 3), (16, False, 2), (6, False, 1)])
def test_the_scratch_discriminator_halves_down_to_4_pixels(resolution, conditional, blocks):
    judge = ScratchDiscriminator(resolution, 3, num_classes=5 if conditional else None)
    assert len(judge.blocks) == blocks
    assert all(parametrize.is_parametrized(m, "weight") for m in judge.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    x = torch.randn(2, 3, resolution, resolution)
    y = torch.tensor([0, 4])
    logits = judge(x, y) if conditional else judge(x)
    assert logits.shape == (2,)
    if conditional:
        with pytest.raises(ValueError, match="pass class ids"):
            judge(x)


def test_an_unknown_discriminator_is_refused_by_the_library():
    with pytest.raises(ConfigError, match="discriminator must be one of auto, base, scratch, not 'pretrained'"):
        FitConfig(objective="adversarial", discriminator="pretrained").validate()


def test_the_scratch_discriminator_depends_only_on_the_seed():
    state = torch.random.get_rng_state()
    a, b, c = (scratch_discriminator(16, 3, None, seed, torch.device("cpu")).state_dict() for seed in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


def test_a_generator_only_base_trains_against_a_discriminator_from_scratch(tmp_path):
    data = tmp_path / "blobs"
    write_images(data, blob_images(4, resolution=16))
    out = tmp_path / "run"
    result = invoke("fit", "--data", data, "--out", out, "--base", "python:models:tiny_generator", "--objective",
                    "adversarial", "--steps", "3", "--samples", "8", "--quiet")
    assert result.exit_code == 0, result.output
    assert "base python:models:tiny_generator ships no discriminator: training one from scratch" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["discriminator"] == "scratch" and summary["status"] == "finished"
    assert (out / "samples.png").is_file() and not (out / "latents.safetensors").exists()
    checkpoint = load_file(str(out / "checkpoints" / "step-0000003.safetensors"))
    start = scratch_discriminator(16, 3, None, 0 + 5, torch.device("cpu")).state_dict()
    trained_d = {k.removeprefix("objective/discriminator."): v for k, v in checkpoint.items()
                 if k.startswith("objective/discriminator.")}
    assert trained_d.keys() == start.keys()
    assert not torch.equal(trained_d["linear.parametrizations.weight.original"],
                           start["linear.parametrizations.weight.original"])


def test_a_conditional_base_may_train_a_new_discriminator_for_new_classes(tmp_path, digits):
    trainer = trained(config(new_only(digits, tmp_path), tmp_path / "run", discriminator="scratch"))
    judge = trainer.objective.discriminator
    assert isinstance(judge, ScratchDiscriminator) and judge.embed.num_embeddings == 10
    assert changed(trainer.start_state, judge)
    summary = json.loads((trainer.out / "summary.json").read_text())
    assert summary["discriminator"] == "scratch"
