"""Evaluation during training (``--eval-every``): a fixed set of samples scored with ``adaptkit eval``'s
metrics, and the best step so far by ``--eval-metric``."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..bases.base import Base
from ..core.handle import AdapterHandle
from ..eval.diversity import PerceptualDistance, load_perceptual_distance
from ..eval.features import FeatureExtractor, load_feature_extractor
from ..eval.report import EvalReport, evaluate
from ..io.image_folder import read_image_folder
from ..io.run_dir import Run
from ..sample import sample_run
from .config import EVAL_METRICS, FitConfig

LOGGED_METRICS = ("kid", "fid", "kmmd", "mean_variance", "lpips_diversity", "intra_lpips", "memorization_ratio",
                  "near_copies")
"""The report's values logged at each evaluation (as ``eval_<name>`` columns of log.csv)."""


@dataclass
class TrainingEval:
    """Scores ``--eval-samples`` fixed samples (``--seed``, ``--truncation``, classes as the training
    images': what ``adaptkit eval`` draws from the finished run) of the ``run`` in training against
    ``real`` and the training images ``train`` (both as the generator learns them: inverted with
    ``--invert``). ``history`` holds one row per evaluation (``step`` and :data:`LOGGED_METRICS`);
    ``best`` the step whose ``--eval-metric`` was best so far (the earliest on ties)."""

    run: Run
    real: torch.Tensor
    train: torch.Tensor
    extractor: FeatureExtractor
    distance: PerceptualDistance
    config: FitConfig
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] | None = None

    @classmethod
    def create(cls, config: FitConfig, out: Path, base: Base, handle: AdapterHandle | None,
               labels: torch.Tensor | None, train: torch.Tensor, device: torch.device) -> tuple["TrainingEval", str | None]:
        """The evaluator of the run training into ``out`` (``labels``: its training images' classes),
        and a note to show (the feature network's fallback), if any."""
        run = Run(out, base, handle, None, None, {}, invert=config.invert == "yes", trained_classes=labels)
        real = run.as_trained(read_image_folder(config.eval_real)) if config.eval_real else train.cpu()
        channels = max(base.channels, real.shape[1])
        extractor, note = load_feature_extractor(config.eval_features, channels=channels, device=device)
        distance = load_perceptual_distance(
            "auto", extractor, fallback=lambda: load_feature_extractor("embedded", channels=channels, device=device)[0])
        return cls(run, real, train.cpu(), extractor, distance, config), note

    def score(self, nearest: str | os.PathLike | None = None) -> EvalReport:
        """The report of the base as it is now (``nearest``: also write nearest.png there)."""
        cfg = self.config
        generated = sample_run(self.run, cfg.eval_samples, truncation=cfg.truncation, seed=cfg.seed)
        return evaluate(generated, self.real, train=self.train, extractor=self.extractor, diversity=self.distance,
                        nearest=nearest, seed=cfg.seed)

    def measure(self, step: int, nearest: str | os.PathLike | None = None) -> bool:
        """Score the base at ``step`` and log it; returns whether it is the best step so far."""
        report = self.score(nearest)
        row = {"step": step, **{name: getattr(report, name) for name in LOGGED_METRICS}}
        self.history.append(row)
        metric = self.config.eval_metric
        value, lower = row[metric], EVAL_METRICS[metric] == "lower"
        if self.best is not None and (math.isnan(value) or (not math.isnan(self.best["value"]) and not (
                value < self.best["value"] if lower else value > self.best["value"]))):
            return False  # a NaN score (e.g. intra-cluster LPIPS without clusters) never beats a number
        self.best = {"step": step, "metric": metric, "value": value}
        return True

    def state(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best}

    def restore(self, state: dict[str, Any]) -> None:
        self.history, self.best = list(state["history"]), state["best"]
