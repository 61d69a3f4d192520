"""``FitConfig``: every training setting and its default, in one place.

The ``adaptkit fit`` options, the config-file keys and the library's ``fit(config)`` are all
built from this dataclass: an option's flag is its field name with dashes (``lr_adapter`` →
``--lr-adapter``, except ``class_id`` → ``--class``), its help text is the field's ``help``.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, option
from ..polarity import INVERT_CHOICES
from .augment import parse_policy
from ..eval.features import EXTRACTOR_KINDS

DEFAULT_BASE = "digits32"
PERCEPTUAL_CHOICES = ("auto", "base", "vgg16", "lpips", "rgb32", "none")
DISCRIMINATOR_CHOICES = ("auto", "base", "scratch")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
UNFREEZE_ALL = "all"
EVAL_METRICS = {"kid": "lower", "fid": "lower", "kmmd": "lower", "intra_lpips": "higher"}
"""The metrics --eval-metric may pick the best step by, and which direction is better."""

REPORT_TO_CHOICES = ("none", "tensorboard")
TENSORBOARD_MISSING = f"{option('report_to', 'tensorboard')} needs the tensorboard package: pip install tensorboard"
RESUMABLE = frozenset({"out", "steps", "checkpoint_every", "log_every", "collapse_check_every", "quiet", "device",
                       "resume", "overwrite", "report_to"})
"""Settings a resumed run may change; every other one must match the interrupted run."""


def _opt(default: Any, help: str, **meta: Any) -> Any:
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, **meta}, **kw)


@dataclass
class FitConfig:
    """Settings of one ``adaptkit fit`` run (see ``adaptkit fit --help``)."""

    # what to train on
    data: str | None = _opt(None, "Folder of training images (PNG/JPEG/WebP/BMP, searched recursively; "
                            "first-level subfolders are class labels).", metavar="DIR")
    out: str | None = _opt(None, "Run folder to write (default: runs/<name of the data folder>).", metavar="DIR")
    base: str = _opt(DEFAULT_BASE, "Base generator: a registered name (see `adaptkit bases`) or "
                     "python:package.module:factory.", metavar="NAME")
    latent_dim: int | None = _opt(None, "Latent size of a python: base when it cannot be inferred.")
    num_classes: int | None = _opt(None, "Number of classes of a conditional python: base when it cannot be "
                                   "inferred.")
    class_id: str | None = _opt(None, "Class (id or name) of every training image for a class-conditional base; "
                                "default: the images' class subfolders.", flag="class", metavar="CLASS")
    strict: bool = _opt(False, "Fail on unreadable or non-image files instead of skipping them.")
    invert: str = _opt("auto", "Train on the images inverted (light ↔ dark): `auto` does when their background "
                       "and mean level are the opposite of the base's own samples (black-on-white drawings for "
                       "digits32, which draws white on black) and says so. The run records the choice made: its "
                       "pictures, sample, interpolate and morph show images as the training images are, and "
                       "eval inverts the real images to compare.", choices=INVERT_CHOICES)
    # what to train
    adapter: str = _opt("bsa", "Adapter to train (see `adaptkit adapters`), or `none` to train only base "
                        "layers chosen with --unfreeze.", metavar="NAME")
    adapter_options: dict[str, Any] = _opt(dict, "An adapter option as KEY=VALUE (repeatable; VALUE is read as "
                                           "JSON when it parses, e.g. reg_weight=0.01).", flag="adapter-option",
                                           metavar="KEY=VALUE")
    unfreeze: list[str] = _opt(list, "Also fine-tune base layers: `all` (every generator weight: the paper's "
                               "'update all' baseline) or a regex full-matching module paths (repeatable). "
                               "BatchNorm statistics stay frozen.", metavar="LAYERS")
    objective: str = _opt("glo", "Training objective: `glo` (the BSA paper's supervised loss with one "
                          "learned latent per image) or `adversarial` (hinge loss against a discriminator, "
                          "fully fine-tuned: the base's, or one trained from scratch, see --discriminator; latents "
                          "drawn from N(0, I): the kpcbn paper's).",
                          metavar="NAME")
    # the loss
    perceptual: str = _opt("auto", "Perceptual loss network: `base` (the base's own feature network), `vgg16` "
                           "(conv1_1…conv4_3, as the paper), `lpips` (AlexNet LPIPS), `rgb32` (adaptkit's "
                           "embedded CIFAR-10 classifier, at the base's resolution), `none`; `auto` = `base` "
                           "when the base has one, else `vgg16` when its weights are on disk, else `rgb32` "
                           "for an RGB base, else `none`.",
                           choices=PERCEPTUAL_CHOICES)
    perceptual_weight: float | None = _opt(None, "λ_C, the perceptual loss weight (default per network: vgg16 "
                                           "0.001 as the paper, lpips 1.0, base 1.0, rgb32 1.0).")
    perceptual_file: str | None = _opt(None, "Weights file for vgg16/lpips's AlexNet (.pth or .safetensors); "
                                       "default: torchvision's cache ($TORCH_HOME/hub/checkpoints).",
                                       metavar="FILE")
    latent_weight: float | None = _opt(None, "λ_z, weight of the paper's latent-spread term. Default: 0.05 on "
                                       "bases sampled with truncation (the paper's 0.2 with 128-d latents held "
                                       "back reconstructions on 64-d digits32), 0 on untruncated bases such as "
                                       "digiface64: in high dimension the term pulls every latent to the origin, "
                                       "where only truncated sampling draws.")
    latent_samples: int = _opt(10, "That term compares the batch's latents with this many × batch-size "
                               "draws of N(0, I).")
    pixel_scales: int = _opt(4, "glo: the pixel L1 is averaged over this many resolutions (each half the last; "
                             "1 = the paper's plain L1).")
    latent_search: int = _opt(64, "glo: start each image's latent at the best of this many draws of N(0, I) "
                              "under the reconstruction loss (0: start at zero, as the paper).")
    noise_std: float = _opt(0.01, "Std of the noise ε added to each latent during training (G sees z_i + ε).")
    # the optimizer
    steps: int = _opt(1000, "Optimizer steps.")
    batch_size: int = _opt(25, "Images per step (all processes together when data-parallel).")
    lr_adapter: float | None = _opt(None, "Adam learning rate of the adapter parameters (default: the adapter's "
                                    "recommended rate for the objective, e.g. pwgconv 5e-4 and kpcbn 5e-3 with "
                                    "glo; else 0.05 with glo, 2e-4 with adversarial, as the kpcbn paper).")
    lr_latent: float = _opt(0.05, "Adam learning rate of the per-image latents.")
    lr_base: float | None = _opt(None, "Adam learning rate of layers unfrozen with --unfreeze (default: 1e-4 "
                                 "with --adapter none, else 1e-7 as the paper's BigGAN path).")
    lr_discriminator: float = _opt(2e-4, "adversarial: Adam learning rate of the discriminator (the kpcbn "
                                   "paper's 2e-4).")
    discriminator: str = _opt("auto", "adversarial: the discriminator trained against: `base` (the base's own, "
                              "fine-tuned), `scratch` (a new spectrally normalised DCGAN discriminator trained from "
                              "scratch, for bases that ship only a generator); `auto` = base when the base has one, "
                              "else scratch.", choices=DISCRIMINATOR_CHOICES)
    d_steps: int = _opt(1, "adversarial: discriminator steps per generator step.")
    augment: str | None = _opt(None, "adversarial: differentiable augmentation of the real and generated images "
                               "the discriminator sees (DiffAugment): `on` (= color,translation,cutout, the "
                               "default), `off`, or a comma-separated list of color, translation, cutout.",
                               metavar="on|off|LIST")
    freeze_d: int = _opt(0, "adversarial: keep the discriminator's first N blocks as the base's (FreezeD); "
                         "the blocks are its first nn.Sequential/nn.ModuleList. Default 0: 2 was no better on the "
                         "class-extension benchmark (docs/adversarial.md).", metavar="N")
    ema_decay: float | None = _opt(None, "Decay of the exponential moving average of the trained parameters "
                                   "that the run outputs (adapter, pictures, samples); 0 = off. Default: "
                                   "0.999 with adversarial, off with glo.")
    warmup_steps: int = _opt(0, "The adapter's (and unfrozen base layers') learning rate rises linearly from 0 "
                             "over this many steps, while the latents train at full rate.")
    seed: int = _opt(0, "Random seed: a CPU run with the same seed gives bitwise the same result.")
    # how to run
    device: str = _opt("auto", "cpu, cuda, cuda:N, mps, or auto (CUDA, then MPS, then CPU).")
    precision: str = _opt("auto", "Autocast precision of the forward pass: auto = bf16 on CUDA (fp16 where "
                          "bf16 is unsupported), fp32 elsewhere.", choices=PRECISION_CHOICES)
    checkpoint_every: int = _opt(500, "Write a resumable checkpoint every N steps (and at the end).")
    log_every: int = _opt(10, "Log the losses (log.csv, progress bar) every N steps.")
    collapse_check_every: int = _opt(50, "Every N steps score the diversity of 16 fixed samples and warn once "
                                      "when at two checks in a row it is below 20% of the base's or most are "
                                      "blank (0: never); summary.json records it.")
    # evaluation during training
    eval_every: int = _opt(0, "Every N steps and at the last step, score a fixed set of samples with `adaptkit "
                           "eval`'s metrics against --eval-real (log.csv, metrics.png, nearest.png) and keep the "
                           "best step's model as the run's adapter, the last step's in last/ (0: never).")
    eval_real: str | None = _opt(None, "Real images for --eval-every (default: the training images; a held-out "
                                 "set keeps the best step from favouring copies of them). The memorization "
                                 "score always compares with the training images.", metavar="DIR")
    eval_metric: str = _opt("kid", "Metric that picks the best step: kid (unbiased, so meaningful with 25–100 "
                            "real images), fid, kmmd (lower is better) or intra_lpips (higher is better).",
                            choices=tuple(EVAL_METRICS))
    eval_samples: int = _opt(256, "Samples scored at each evaluation, drawn with --seed and --truncation (the "
                             "same as `adaptkit eval RUN -n N --seed S`).")
    eval_features: str = _opt("auto", "Feature network of the evaluation: Inception-v3 when its weights are on "
                              "disk (auto), or the embedded one.", choices=EXTRACTOR_KINDS)
    samples: int = _opt(64, "Number of random samples in samples.png.")
    truncation: float | str = _opt("base", "Truncation threshold of the latents for samples.png: a number, "
                                   "`none`, or `base` = the base's default (0.4 for BigGAN and digits32 as "
                                   "the paper; none for digiface64).", metavar="T|none|base")
    resume: bool = _opt(False, "Continue the run in --out from its last checkpoint (bitwise the same result as "
                        "an uninterrupted run); only --steps, --checkpoint-every, --log-every, --device "
                        "and --quiet may change.")
    overwrite: bool = _opt(False, "Write into a non-empty --out, replacing a previous run there.")
    quiet: bool = _opt(False, "No progress bar: a plain line every 10% of the steps (for log files).")
    report_to: str = _opt("none", "Also log every loss term, the learning rates and, at each checkpoint, a grid of "
                          "16 fixed samples for an experiment tracker: `tensorboard` (event files in "
                          "RUN/tensorboard; needs the tensorboard package) or `none`.",
                          choices=REPORT_TO_CHOICES)

    # --- derived values ---------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        if not self.data:
            raise ConfigError(f"give {option('out')} (or {option('data')}, to name the run folder after it)")
        return Path("runs") / Path(self.data).resolve().name

    def step_batch(self, images: int) -> int:
        """Images per step (all processes together): --batch-size, or every image when fewer."""
        return min(self.batch_size, images)

    @property
    def update_all(self) -> bool:
        return UNFREEZE_ALL in self.unfreeze

    def base_lr(self) -> float:
        if self.lr_base is not None:
            return self.lr_base
        return 1e-4 if self.adapter == "none" else 1e-7

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FitConfig":
        """Settings from a mapping whose keys are field names or flag names (``lr-adapter``, ``class``);
        unknown keys and wrong types are a ``ConfigError``."""
        values = {}
        for key, value in data.items():
            name = field_name(key)
            values[name] = check_type(name, value)
        return cls(**values)

    def validate(self) -> None:
        """Check value ranges; raise ``ConfigError`` naming the option."""
        positive = ("steps", "batch_size", "pixel_scales", "checkpoint_every", "log_every", "samples", "latent_samples",
                    "lr_adapter", "lr_latent", "lr_discriminator", "d_steps")
        for name in positive:
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ConfigError(f"{option(name)} must be positive, got {getattr(self, name)}")
        for name in ("latent_weight", "warmup_steps", "freeze_d", "latent_search", "collapse_check_every", "noise_std", "perceptual_weight", "lr_base",
                     "eval_every"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{option(name)} must not be negative, got {value}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ConfigError(f"{option('ema_decay')} must be in [0, 1) (0: off), got {self.ema_decay}")
        if self.augment is not None:
            parse_policy(self.augment)
        if self.objective != "adversarial":
            used = [n for n, off in (("augment", (None, "off")), ("freeze_d", (0,)), ("discriminator", ("auto",)))
                    if getattr(self, n) not in off]
            if used:
                raise ConfigError(f"{option(used[0])} is a setting of the adversarial objective's discriminator: it needs "
                                  f"{option('objective', 'adversarial')}")
        if self.truncation not in ("base", "none") and not (
                isinstance(self.truncation, (int, float)) and self.truncation > 0):
            raise ConfigError(f"{option('truncation')} must be a positive number, none or base, got {self.truncation!r}")
        if self.discriminator not in DISCRIMINATOR_CHOICES:
            raise ConfigError(f"{option('discriminator')} must be one of {', '.join(DISCRIMINATOR_CHOICES)}, "
                              f"not {self.discriminator!r}")
        if self.perceptual not in PERCEPTUAL_CHOICES:
            raise ConfigError(f"{option('perceptual')} must be one of {', '.join(PERCEPTUAL_CHOICES)}, not {self.perceptual!r}")
        if self.report_to not in REPORT_TO_CHOICES:
            raise ConfigError(f"{option('report_to')} must be one of {', '.join(REPORT_TO_CHOICES)}, not {self.report_to!r}")
        if self.report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(TENSORBOARD_MISSING)
        if self.invert not in INVERT_CHOICES:
            raise ConfigError(f"{option('invert')} must be one of {', '.join(INVERT_CHOICES)}, not {self.invert!r}")
        for name, choices in (("eval_metric", tuple(EVAL_METRICS)), ("eval_features", EXTRACTOR_KINDS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{option(name)} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        if self.eval_samples < 2:
            raise ConfigError(f"{option('eval_samples')} must be at least 2, got {self.eval_samples}")
        if self.eval_real is not None and not self.eval_every:
            raise ConfigError(f"{option('eval_real')} is used by evaluation during training: set {option('eval_every')}")
        if self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"{option('precision')} must be one of {', '.join(PRECISION_CHOICES)}, not {self.precision!r}")
        if self.adapter == "none" and not self.unfreeze:
            raise ConfigError(f"{option('adapter', 'none')} trains no generator parameter: add "
                              f"{option('unfreeze', ['all'])} (fine-tune every generator weight) or layer patterns to "
                              f"{option('unfreeze')}, or choose an adapter")
        if self.adapter == "none" and self.adapter_options:
            raise ConfigError(f"adapter options ({option('adapter_options')}) need an adapter, not "
                              f"{option('adapter', 'none')}")
        if not self.data and not self.resume:
            raise ConfigError(f"give the folder of training images as {option('data')} (or run `adaptkit demo` to "
                              "try adaptkit on built-in images)")


FIELDS = {f.name: f for f in dataclasses.fields(FitConfig)}
_HINTS = typing.get_type_hints(FitConfig)


ARGUMENT_FLAGS = {"pairs": "pair"}
"""The flags of library arguments outside ``FitConfig`` that are not their names with dashes."""


def flag(name: str) -> str:
    """The command-line flag (without ``--``) of a field, or of a library function's argument an
    error names (``class_id`` → ``class``, ``pairs`` → ``pair``, else the name with dashes)."""
    if name in FIELDS:
        return FIELDS[name].metadata.get("flag", name.replace("_", "-"))
    return ARGUMENT_FLAGS.get(name, name.replace("_", "-"))


_BY_FLAG = {flag(n): n for n in FIELDS}


def field_name(key: str) -> str:
    """The field a config-file key or flag names (``lr-adapter``, ``lr_adapter``, ``class``)."""
    if key in FIELDS:
        return key
    if key in _BY_FLAG:
        return _BY_FLAG[key]
    if key.replace("_", "-") in _BY_FLAG:
        return _BY_FLAG[key.replace("_", "-")]
    raise ConfigError(f"unknown setting {key!r} (valid: {', '.join(sorted(_BY_FLAG))})")


def check_type(name: str, value: Any) -> Any:
    """``value`` if it fits field ``name``'s type (ints are accepted for floats), else ``ConfigError``."""
    hint = _HINTS[name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in args:
        origin = typing.get_origin(kind) or kind
        if kind is type(None) and value is None:
            return None
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is list and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        if origin is list and isinstance(value, str):
            return [value]
        if origin is dict and isinstance(value, dict):
            return dict(value)
        if origin in (str, bool) and isinstance(value, origin):
            return value
    if name == "class_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    wanted = " or ".join(getattr(a, "__name__", str(a)) for a in args)
    raise ConfigError(f"setting {option(name)} must be {wanted}, got {value!r}")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The settings of a TOML file, keyed by field name (keys as flags or field names; an
    ``[adapter-options]`` table gives adapter options)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    try:
        raw = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file} is not valid TOML ({exc})") from None
    return {field_name(k): check_type(field_name(k), v) for k, v in raw.items()}
