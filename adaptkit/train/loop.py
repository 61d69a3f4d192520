"""The training loop: ``fit(config) -> Path`` adapts a frozen base to a folder of images."""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.handle import AdapterHandle, attach_adapter
from ..device import select_device
from ..errors import ConfigError, TrainingError, TrainingInterrupted, option
from ..io.atomic import clear_stale_stages, staged_folder
from ..io.checkpoint import save_adapter
from ..io.folder_lock import folder_lock
from ..io.os_errors import storage_errors
from ..io.run_dir import (
    CHECKPOINTS_DIR, LAST_DIR, NEAREST_PNG, RUN_FILES, TENSORBOARD_DIR, check_folder_files, is_run_own,
    save_base_weights, save_latents,
)
from .collapse import CollapseGuard
from .config import FitConfig
from .ddp import Processes, start, stop, torchrun_processes
from .ema import ParameterEMA
from .evaluation import TrainingEval
from .objectives import Objective
from .outputs import append_log, write_log, write_loss_plot, write_pictures, write_summary
from .perceptual import build_perceptual
from .plan import FitPlan, last_checkpoint, out_folder, plan_fit
from .progress import Reporter, SilentReporter, default_reporter
from .state import (
    keep_only, latest_checkpoint, load_checkpoint, load_optimizer_state, optimizer_state, prefixed, read_meta,
    save_checkpoint, unprefixed,
)
from .tracking import Tracker, open_tracker


def _non_finite(total: torch.Tensor, terms: dict[str, torch.Tensor]) -> str:
    """``total=nan, pixel=nan``: the loss terms of one step that are not finite."""
    values = {k: v.detach().float().mean().item() for k, v in {"total": total, **terms}.items()}
    return ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))


class FitStep(nn.Module):
    """One training forward pass (the module DDP wraps): the objective's terms under autocast,
    the adapter's regularizer, and their weighted total."""

    def __init__(self, generator: nn.Module, handle: AdapterHandle | None, objective: Objective,
                 device: torch.device, amp: torch.dtype | None) -> None:
        super().__init__()
        self.generator, self.handle, self.objective = generator, handle, objective
        self.device_type, self.amp = device.type, amp

    def forward(self, index: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        autocast = torch.autocast(self.device_type, self.amp) if self.amp else contextlib.nullcontext()
        with autocast:
            terms = self.objective.loss(index)
        total = sum(self.objective.weights[k] * v for k, v in terms.items())
        if self.handle is not None:
            terms["adapter_reg"] = self.handle.regularization()
            total = total + terms["adapter_reg"]
            terms.update(self.handle.regularization_terms())
        return total, terms


class StopRequest(contextlib.AbstractContextManager):
    """Ctrl-C / SIGTERM ask the loop to stop at the end of the current step (a second Ctrl-C aborts)."""

    def __init__(self, reporter: Reporter) -> None:
        self.requested = False
        self.reporter = reporter
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.reporter.note("[yellow]stopping after this step and saving a checkpoint (Ctrl-C again to abort)[/]")

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def unfreeze(generator: nn.Module, names: tuple[str, ...]) -> dict[str, nn.Parameter]:
    """Make the generator parameters ``names`` trainable; returns them by name."""
    params = dict(generator.named_parameters())
    chosen = {n: params[n] for n in names}
    for p in chosen.values():
        p.requires_grad_(True)
    return chosen


def resume_config(out: str | Path, **changes: Any) -> FitConfig:
    """The settings of the run in ``out`` (from its last checkpoint) with ``changes``, to resume it."""
    ckpt = last_checkpoint(Path(out))
    settings = {**read_meta(ckpt)["settings"], **changes, "out": str(out), "resume": True}
    return FitConfig.from_dict(settings)


class Trainer:
    """One run of :func:`fit` (see there): executes a :class:`~adaptkit.train.plan.FitPlan`."""

    def __init__(self, plan: FitPlan, procs: Processes, command: str | None, reporter: Reporter) -> None:
        self.plan, self.procs, self.command, self.reporter = plan, procs, command, reporter
        self.config, self.device, self.out, self.base, self.data = plan.config, plan.device, plan.out, plan.base, plan.data
        self.folder = self.out  # where the run is written: out, or with --overwrite a staging folder beside it
        self.pending: int | None = None  # the step of the newest checkpoint, until a finite loss confirms it
        self.confirmed: int | None = None  # the step of the last checkpoint known good
        self.history: list[dict[str, float]] = []
        self.step, self.elapsed_before = 0, 0.0
        self.running: torch.Tensor | None = None
        self.names: list[str] = []
        self.count = 0
        self.tracker = Tracker()

    # --- setup ------------------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.folder / CHECKPOINTS_DIR

    def setup(self) -> None:
        """Execute the plan in memory: attach the adapter, unfreeze layers, build the objective, the
        optimizer and the guards; restore a resumed run's checkpoint; then start the run folder."""
        plan, cfg, device, base = self.plan, self.config, self.device, self.base
        resume = plan.folder.resume_from
        for note in plan.notes:
            self.reporter.note(note)
        self.handle = None
        if plan.adapter is not None:
            self.handle = attach_adapter(base.generator, plan.adapter, call=base.call, **plan.adapter_options)
            if self.handle.new_classes:
                base.add_classes(self.handle.new_classes, plan.new_class_names)
        labels = plan.labels
        self.unfrozen = unfreeze(base.generator, plan.unfrozen)
        perceptual = build_perceptual(plan.perceptual, base, cfg.perceptual_file)
        if perceptual is not None:
            perceptual.to(device)
        self.reporter.note(f"{len(self.data)} images of {self.data.root} → {self.out} | base {base.id} | "
                           f"adapter {cfg.adapter} | perceptual {plan.perceptual} | {device}")
        self.data_rng = torch.Generator().manual_seed(cfg.seed)
        self.noise_rng = torch.Generator(device).manual_seed(cfg.seed + 1)
        self.objective = plan.objective(base, self.data.images.to(device),
                                       labels.to(device) if labels is not None else None,
                                       cfg, perceptual, self.noise_rng, processes=self.procs)
        self.class_search = self._searched_classes(labels)
        self.guard = None
        if cfg.collapse_check_every and self.procs.main:
            self.guard = CollapseGuard.create(base, self.objective.labels, cfg.seed)
            if resume is None:
                self.guard.measure(0)
        if self.procs.main:
            self.tracker = open_tracker(cfg.report_to, self.folder / TENSORBOARD_DIR, base, self.objective.labels, cfg.seed,
                                        self._outputs)
        self.evaluator, self.best_state = None, None
        if cfg.eval_every and self.procs.main:
            self.evaluator, note = TrainingEval.create(self.config, self.out, base, self.handle, self.objective.labels,
                                                       self.data.images, device)
            if note:
                self.reporter.note(f"evaluation: {note}")
        step_module = FitStep(base.generator, self.handle, self.objective, device, plan.amp)
        self.model = self.procs.wrap(step_module, device, partly_used=bool(self.handle and self.handle.new_classes))
        self.optimizer = torch.optim.Adam(self._param_groups(), betas=plan.objective.betas)
        self.ema_decay = plan.objective.default_ema_decay if cfg.ema_decay is None else cfg.ema_decay
        self.ema = ParameterEMA(self._trained_parameters(), self.ema_decay) if self.ema_decay else None
        self.scaler = torch.amp.GradScaler(device.type, enabled=plan.amp == torch.float16)
        if resume is not None:
            self._restore(resume)
        if self.procs.main:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_log()
            write_summary(self.folder, {"status": "running", "steps": self.step, **self._recorded()})

    def _recorded(self) -> dict[str, Any]:
        """What the run folder records from the start: every setting (as resolved) and the base."""
        cfg, base = self.config, self.base
        return {
            "training": {**cfg.to_dict(), "command": self.command},
            "base": {"id": cfg.base, "options": self._base_options(), "latent_dim": base.latent_dim,
                     "resolution": base.resolution, "channels": base.channels, "num_classes": base.num_classes},
        }

    def _base_options(self) -> dict[str, Any]:
        cfg = self.config
        return {k: v for k, v in (("latent_dim", cfg.latent_dim), ("num_classes", cfg.num_classes)) if v is not None}

    def _searched_classes(self, labels: torch.Tensor | None) -> dict[str, int] | None:
        """The classes the objective gave the images in no class folder (counted by class name), noted
        in the log; None when every image had one."""
        if labels is None or not bool((labels < 0).any()):
            return None
        found = self.objective.labels[labels.to(self.objective.labels.device) < 0].tolist()
        names = self.base.class_names or [str(i) for i in range(self.base.num_classes or 0)]
        counts = {names[c]: found.count(c) for c in sorted(set(found))}
        shown = ", ".join(f"{name}: {n}" for name, n in counts.items())
        self.reporter.note(f"{len(found)} image(s) in no class folder: each got the base class that reconstructs "
                           f"it best ({shown}); --class fixes one class for all")
        return counts

    def _param_groups(self) -> list[dict[str, Any]]:
        groups = []
        if self.handle is not None:
            groups.append({"params": list(self.handle.parameters()), "lr": self.plan.adapter_lr(), "name": "adapter"})
        if self.unfrozen:
            groups.append({"params": list(self.unfrozen.values()), "lr": self.config.base_lr(), "name": "base"})
        return groups + self.objective.param_groups()

    def _trained_parameters(self) -> dict[str, nn.Parameter]:
        """What the generator's optimizer trains, named ``<group>/<index>``."""
        return {f"{g['name']}/{i}": p for g in self.optimizer.param_groups for i, p in enumerate(g["params"])}

    def _outputs(self) -> contextlib.AbstractContextManager:
        """Where the run's outputs are made: with the moving average of the parameters, if kept."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    # --- checkpoints ------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.pending = self.step  # on every process: the next step confirms it (a collective)
        if not self.procs.main:
            return
        tensors = {
            **prefixed("objective", self.objective.checkpoint_state()),
            **prefixed("base", self.unfrozen),
            "rng/data": self.data_rng.get_state(),
            "rng/noise": self.noise_rng.get_state(),
            "rng/torch": torch.get_rng_state(),
        }
        if self.handle is not None:
            tensors.update(prefixed("adapter", self.handle.state_dict()))
        if self.ema is not None:
            tensors.update(prefixed("ema", self.ema.state_dict()))
        if self.best_state is not None:
            tensors.update(prefixed("best", self.best_state))
        optimizers = {"optimizer": self.optimizer, **{f"aux/{k}": o for k, o in self.objective.optimizers().items()}}
        opt_meta = {}
        for prefix, opt in optimizers.items():
            opt_tensors, opt_meta[prefix] = optimizer_state(opt, prefix)
            tensors.update(opt_tensors)
        save_checkpoint(self.ckpt_dir, self.step, tensors, {
            "settings": self.config.to_dict(),
            "files": [f.as_posix() for f in self.data.files],
            "elapsed_s": self._elapsed(),
            "history": self.history,
            "optimizers": opt_meta,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "collapse": self.guard.state() if self.guard is not None else None,
            "eval": self.evaluator.state() if self.evaluator is not None else None,
        })
        write_loss_plot(self.folder, self.history)

    def _model_state(self) -> dict[str, torch.Tensor]:
        """A CPU copy of what the run folder saves: the adapter's (unbaked) tensors, the unfrozen
        base tensors and the learned latents."""
        state = {**prefixed("base", self.unfrozen)}
        if self.handle is not None:
            state.update(prefixed("adapter", self.handle.state_dict()))
        learned = self.objective.learned_latents()
        if learned is not None:
            state["latents"] = learned[0]
        return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def _load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        """Put a :meth:`_model_state` back into the adapter and the unfrozen base layers (the
        latents are the caller's)."""
        if self.handle is not None:
            self.handle.load_state_dict(unprefixed("adapter", state))
        with torch.no_grad():
            for name, value in unprefixed("base", state).items():
                self.unfrozen[name].copy_(value)

    def _restore(self, path: Path) -> None:
        meta, tensors = load_checkpoint(path)
        self._load_model_state(tensors)
        missing = self.objective.load_state_dict(unprefixed("objective", tensors), strict=False).missing_keys
        absent = sorted(set(self.objective.checkpoint_state()) & set(missing))
        if absent:
            raise ConfigError(f"checkpoint {path} lacks the objective's {absent[0]!r}")
        if self.ema is not None:
            average = unprefixed("ema", tensors)
            if average.keys() != self.ema.average.keys():
                raise ConfigError(f"checkpoint {path} lacks the moving average of the parameters ({option('ema_decay')})")
            self.ema.load_state_dict(average)
        optimizers = {"optimizer": self.optimizer, **{f"aux/{k}": o for k, o in self.objective.optimizers().items()}}
        for prefix, opt in optimizers.items():
            load_optimizer_state(opt, prefix, tensors, meta["optimizers"][prefix])
        if meta.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(meta["scaler"])
        self.data_rng.set_state(tensors["rng/data"])
        self.noise_rng.set_state(tensors["rng/noise"])
        torch.set_rng_state(tensors["rng/torch"])
        self.step, self.elapsed_before, self.history = meta["step"], meta["elapsed_s"], meta["history"]
        self.confirmed = self.step
        if self.guard is not None and meta.get("collapse"):
            self.guard.restore(meta["collapse"])
        if self.evaluator is not None and meta.get("eval"):
            self.evaluator.restore(meta["eval"])
            self.best_state = unprefixed("best", tensors)
        self.reporter.note(f"resuming {self.out} at step {self.step}")

    # --- the loop ---------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def _accumulate(self, values: dict[str, torch.Tensor]) -> None:
        stacked = torch.stack([v.detach().float() for v in values.values()])
        if self.running is None:
            self.names, self.running = list(values), torch.zeros_like(stacked)
        self.running += stacked
        self.count += 1

    def _flush(self, stop_requested: bool) -> bool:
        """Log the mean losses since the last flush (over all processes); stop on NaN/inf. Returns
        whether any process asked to stop."""
        if self.running is None or self.count == 0:
            return stop_requested
        flags = torch.tensor([self.count, float(stop_requested)], device=self.running.device)
        buffer = self.procs.sum(torch.cat([self.running, flags]))
        values = (buffer[:-2] / buffer[-2]).tolist()
        stop_any = bool(buffer[-1] > 0)
        self.running.zero_()
        self.count = 0
        means = dict(zip(self.names, values))
        bad = ", ".join(f"{k}={v}" for k, v in means.items() if not math.isfinite(v))
        if bad:
            self._diverged(f"the loss became non-finite by step {self.step} ({bad})")
        self.history.append({"step": self.step, "elapsed_s": round(self._elapsed(), 3), **means})
        self.tracker.scalars(self.step, {**{f"loss/{k}": v for k, v in means.items()}, **self._learning_rates()})
        if self.evaluator is not None:  # its columns: the whole log is rewritten
            self._write_log()
        elif self.procs.main:
            append_log(self.folder, self.history[-1])
        self.reporter.log(self.step, means)
        return stop_any

    def _learning_rates(self) -> dict[str, float]:
        """Every optimizer parameter group's current rate, tagged ``lr/<group>`` (``lr/aux/<optimizer>``)."""
        rates = {f"lr/{g['name']}": g["lr"] for g in self.optimizer.param_groups}
        for name, opt in self.objective.optimizers().items():
            rates.update({f"lr/aux/{name}": g["lr"] for g in opt.param_groups[:1]})
        return rates

    def _diverged(self, what: str) -> None:
        """Stop training: the checkpoint not yet confirmed good is removed, the last good one kept."""
        if self.procs.main:
            keep_only(self.ckpt_dir, self.confirmed)
        self._write_log()
        last = latest_checkpoint(self.ckpt_dir)
        if self.folder != self.out:
            kept = f"the previous run in {self.out} is left as it was"
        else:
            kept = f"the last good checkpoint ({last}) is kept" if last else "no good checkpoint had been written"
        raise TrainingError(f"{what}; training stopped and {kept}. Try lower learning rates "
                            f"({option('lr_adapter')}, {option('lr_latent')}) or {option('precision', 'fp32')}")

    def _confirm(self) -> None:
        """The newest checkpoint is good: remove the older ones."""
        if self.pending is None:
            return
        if self.procs.main:
            keep_only(self.ckpt_dir, self.pending)
        self.confirmed, self.pending = self.pending, None

    def _check_values(self, total: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """After an update: every trained tensor must still be finite, else training diverged."""
        params = [p for opt in (self.optimizer, *self.objective.optimizers().values())
                  for group in opt.param_groups for p in group["params"]]
        if not params or bool(torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()):
            return
        step, bad = self.step + 1, _non_finite(total, terms)
        self._diverged(f"the loss became non-finite by step {step} ({bad})" if bad else
                       f"the update of step {step} made the trained values non-finite")

    def _warm_up(self) -> None:
        """--warmup-steps: the generator's rates (adapter, unfrozen base layers) rise linearly from 0,
        so the latents align the reconstructions before the generator moves; set from the step
        alone, so a resumed run is the same."""
        warmup = self.config.warmup_steps
        for group in self.optimizer.param_groups:
            if group["name"] in ("adapter", "base"):
                group.setdefault("full_lr", group["lr"])
                group["lr"] = group["full_lr"] * min(1.0, (self.step + 1) / warmup) if warmup else group["full_lr"]

    def train_step(self) -> None:
        """One optimizer step on a random batch (this process's share of it)."""
        n = len(self.data)
        index = torch.randperm(n, generator=self.data_rng)[: self.config.step_batch(n)]
        index = self.procs.shard(index).to(self.device)
        aux = self.objective.auxiliary_step(index)
        self._warm_up()
        self.optimizer.zero_grad(set_to_none=True)
        total, terms = self.model(index)
        if self.pending is not None:  # the newest checkpoint's values gave this loss
            if bool(self.procs.sum(torch.isfinite(total.detach()).logical_not().float().reshape(1)) == 0):
                self._confirm()
            else:
                self._diverged(f"the loss became non-finite by step {self.step + 1} ({_non_finite(total, terms)})")
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._check_values(total, terms)
        if self.ema is not None:
            self.ema.update(self.step + 1)
        self._accumulate({"total": total, **terms, **aux})
        self.step += 1

    def _guard(self) -> None:
        """Every --collapse-check-every steps: score the guard's fixed samples, warn once on collapse."""
        every = self.config.collapse_check_every
        if self.guard is None or self.step % every:
            return
        rate = f"--lr-adapter {self.plan.adapter_lr() / 10:g}" if self.handle else f"--lr-base {self.config.base_lr() / 10:g}"
        hint = f"Likely the learning rate is too high for these images: try {rate}"
        with self._outputs():
            warning = self.guard.check(self.step, hint + " or fewer --steps (see collapse in summary.json)")
        self.tracker.scalars(self.step, {f"collapse/{k}": v for k, v in self.guard.history[-1].items() if k != "step"})
        if warning:
            self.reporter.note(f"[yellow]warning:[/] {warning}")

    def _write_log(self, folder: Path | None = None) -> None:
        """log.csv, loss.png and metrics.png into ``folder`` (the run's folder by default)."""
        if not self.procs.main:
            return
        evaluator = self.evaluator
        write_log(folder or self.folder, self.history, evaluator.history if evaluator else None,
                  evaluator.best["step"] if evaluator and evaluator.best else None)

    def _evaluate(self) -> None:
        """Every --eval-every steps and at the last: score the fixed samples (nearest.png of this
        step), keep a copy of the model (its moving average, with --ema-decay) when it is the best so
        far, redraw log.csv and metrics.png."""
        cfg = self.config
        if self.evaluator is None or (self.step % cfg.eval_every and self.step != cfg.steps):
            return
        with self._outputs():
            if self.evaluator.measure(self.step, self.folder / NEAREST_PNG):
                self.best_state = self._model_state()
        row, best = self.evaluator.history[-1], self.evaluator.best
        self.tracker.scalars(self.step, {f"eval/{k}": v for k, v in row.items() if k != "step"})
        self.reporter.note(f"step {self.step}: {cfg.eval_metric} {row[cfg.eval_metric]:.5g}, memorization ratio "
                           f"{row['memorization_ratio']:.3f} (best: step {best['step']})")
        self._write_log()

    def train(self) -> None:
        cfg, procs = self.config, self.procs
        self.started = time.perf_counter()
        self.session_start_step = self.step
        self.reporter.start(cfg.steps, self.step)
        if self.step == 0:
            self.tracker.samples(0)
        with StopRequest(self.reporter) as stop_request:
            try:
                while self.step < cfg.steps:
                    self.train_step()
                    self.reporter.advance(self.step)
                    self._guard()
                    self._evaluate()
                    stopping = stop_request.requested and not procs.distributed
                    checkpoint = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
                    if stopping or checkpoint or self.step % cfg.log_every == 0:
                        stopping = self._flush(stop_request.requested) or stopping
                    if checkpoint or stopping:
                        self._checkpoint()
                        self.tracker.samples(self.step)
                    if stopping:
                        self._confirm()
                        self._write_log()
                        if procs.main:
                            write_summary(self.folder, {"status": "interrupted", "steps": self.step,
                                                        **self._recorded()})
                        raise TrainingInterrupted(
                            f"stopped at step {self.step}/{cfg.steps}; checkpoint saved in {self.out / CHECKPOINTS_DIR}"
                            f" — continue with: adaptkit fit --out {self.out} --resume")
                self._confirm()
            finally:
                self.reporter.close()
                self.tracker.close()
        self.train_time = time.perf_counter() - self.started

    def run(self) -> None:
        """Set up, train, then write the run folder.

        With ``--overwrite`` over a previous run, the new run (everything it writes, checkpoints
        included) goes into a staging folder beside ``out``, which replaces the previous run only
        at the end, complete and checked, or when Ctrl-C stops it with a checkpoint (so ``--resume``
        continues it). Any error (a bad option, a divergence, a full disk) leaves the previous run
        as it was. Files in ``out`` that are not a run's own are kept.
        """
        out = self.out
        if not (self.plan.folder.replace and self.procs.main):
            self.setup()
            self.train()
            self.finish()
            return
        interrupted = None
        with staged_folder(out, keep=lambda name: not is_run_own(name)) as self.folder:
            self.setup()
            try:
                self.train()
            except TrainingInterrupted as exc:
                interrupted = exc
            else:
                self.finish()
        self.folder = out
        if interrupted is not None:
            raise interrupted

    # --- outputs ----------------------------------------------------------------------------
    def _save_model(self, folder: Path, metadata: dict[str, Any], latents: torch.Tensor | None,
                    labels: torch.Tensor | None) -> None:
        """The adapter, the unfrozen base tensors and the latents, as they are now, into ``folder``."""
        if self.handle is not None:
            save_adapter(self.handle, folder, base_id=self.config.base, metadata=metadata)
        if self.unfrozen:
            save_base_weights(folder, self.unfrozen)
        if latents is not None:
            save_latents(folder, latents, labels)

    def _keep_best(self, folder: Path, metadata: dict[str, Any], latents: torch.Tensor | None, labels: torch.Tensor | None,
                   base_summary: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor | None]:
        """--eval-every: save the last step's model in ``last/``, then make the best step's the one the
        run folder gets (and redraw nearest.png for it). Returns the summary's ``eval`` entry and the
        best step's latents."""
        cfg, evaluator, best = self.config, self.evaluator, self.evaluator.best
        self._save_model(folder / LAST_DIR, metadata, latents, labels)
        write_summary(folder / LAST_DIR, {"status": "last step", "steps": self.step, "base": base_summary})
        self._load_model_state(self.best_state)
        if best["step"] != self.step:
            evaluator.score(folder / NEAREST_PNG)
        rows = {row["step"]: row for row in evaluator.history}
        return {"every": cfg.eval_every, "metric": best["metric"], "best_step": best["step"],
                "best": rows.get(best["step"]), "last": evaluator.history[-1], "last_dir": LAST_DIR,
                "real": cfg.eval_real or cfg.data, "samples": cfg.eval_samples,
                "features": evaluator.extractor.name, "lpips_distance": evaluator.distance.name,
                }, self.best_state.get("latents", latents)

    def finish(self) -> None:
        """Write the run's files into a staging folder that replaces the run folder's old ones only
        when all are written and read back (its checkpoints and other files are kept)."""
        if not self.procs.main:
            return
        self.reporter.note("writing the run folder…")
        # nearest.png of the best step was drawn during training unless _keep_best redraws it
        with staged_folder(self.folder, keep=lambda name: name not in RUN_FILES or name == NEAREST_PNG) as stage:
            self._write_outputs(stage)
            check_folder_files(stage)

    def _write_outputs(self, folder: Path) -> None:
        cfg, base = self.config, self.base
        recorded = self._recorded()
        metadata = {"training": recorded["training"], "base_options": self._base_options()}
        if self.plan.new_class_names:
            metadata["class_names"] = self.plan.new_class_names
        with self._outputs():
            learned = self.objective.learned_latents()
            latents, labels = learned if learned is not None else (None, self.objective.labels)
            evaluation = None
            if self.evaluator is not None and self.best_state is not None:
                evaluation, latents = self._keep_best(folder, metadata, latents, labels, recorded["base"])
            self._save_model(folder, metadata, latents, labels)
            write_pictures(folder, base, self.data.images, latents, labels, samples=cfg.samples,
                           truncation=cfg.truncation, seed=cfg.seed, invert=cfg.invert == "yes")
        self._write_log(folder)
        session_steps = self.step - self.session_start_step
        write_summary(folder, {
            "status": "finished",
            "steps": self.step,
            "wall_time_s": round(self._elapsed(), 3),
            "train_time_s": round(self.train_time, 3),
            "it_per_s": round(session_steps / self.train_time, 3) if self.train_time > 0 else None,
            "first_losses": self.history[0] if self.history else None,
            "final_losses": self.history[-1] if self.history else None,
            "images": len(self.data),
            "skipped": [[p.as_posix(), why] for p, why in self.data.skipped],
            "classes": sorted(set(labels.tolist())) if labels is not None else None,
            "searched_classes": self.class_search,
            "collapse": None if self.guard is None else {"checked_every": cfg.collapse_check_every,
                                                         **self.guard.state()},
            "adapter": None if self.handle is None else {
                "name": cfg.adapter, "parameters": self.handle.num_parameters(), "targets": len(self.handle.targets),
                "lr": self.plan.adapter_lr()},
            "unfrozen_base_parameters": sum(p.numel() for p in self.unfrozen.values()),
            "lr_base": cfg.base_lr() if self.unfrozen else None,
            "truncation": base.resolve_truncation(cfg.truncation) or "none",
            "base": recorded["base"],
            "eval": evaluation,
            "objective": cfg.objective,
            **self.objective.summary(),
            "ema_decay": self.ema_decay,
            "perceptual": self.plan.perceptual,
            "loss_weights": self.objective.weights,
            "device": str(self.device),
            "precision": str(self.plan.amp).replace("torch.", "") if self.plan.amp else "fp32",
            "world_size": self.procs.world_size,
            "training": recorded["training"],
        })


def fit(config: FitConfig, *, command: str | None = None, reporter: Reporter | None = None) -> Path:
    """Adapt ``config.base`` to the images in ``config.data``; returns the run folder.

    The folder holds the adapter (``adapter_config.json`` recording the base and every setting,
    ``adapter_model.safetensors``), ``latents.safetensors``, ``samples.png``,
    ``reconstructions.png``, ``interpolation.png``, ``loss.png``, ``log.csv``, ``summary.json`` and
    resumable checkpoints. With ``eval_every`` it also holds ``metrics.png`` and ``nearest.png``,
    its model is the best evaluated step's (``summary.json`` says which) and ``last/`` holds the
    last step's. Under ``torchrun`` the processes train data-parallel. Raises
    ``TrainingInterrupted`` after Ctrl-C (a checkpoint is saved; resume with ``resume=True``),
    ``TrainingError`` when the loss or the trained values become NaN/inf (the last checkpoint whose
    values gave a finite loss is kept), ``FolderLockedError`` when another process writes to
    ``config.out``, ``DiskFullError``/``FilePermissionError`` when it cannot be written. With
    ``overwrite`` the previous run is replaced only when the new one is complete (see
    ``Trainer.run``). Every setting is checked first (:func:`~adaptkit.train.plan.plan_fit`): a bad
    one is a ``ConfigError`` (or the ``DataError``, ``AdapterConfigError``, … it is) raised before
    any folder is created, written or locked. ``command`` is recorded in the metadata.
    """
    config.validate()
    procs = torchrun_processes()
    device = select_device(config.device, procs.local_rank)
    if not procs.main:
        reporter = SilentReporter()
    elif reporter is None:
        reporter = default_reporter(config.quiet)
    start(procs, device)
    finished = False
    try:
        with storage_errors():
            plan = plan_fit(config, device, procs.world_size)
            with folder_lock(plan.out) if procs.main else contextlib.nullcontext():
                if procs.main:
                    clear_stale_stages(plan.out)  # of an --overwrite run killed before it finished
                    if out_folder(config) != plan.folder:
                        raise ConfigError(f"{plan.out} changed while the run was being planned: start it again")
                trainer = Trainer(plan, procs, command, reporter)
                trainer.run()
                finished = True
                return trainer.out
    finally:
        stop(procs, finished=finished)
