"""`fit --eval-every`: metrics logged during training, the best step kept as the run's model (the last
beside it in last/), resume keeping the best so far, and the options from the CLI and TOML."""
import csv
import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from adaptkit.cli import cli
from adaptkit.data import load_image_folder
from adaptkit.errors import ConfigError, TrainingInterrupted
from adaptkit.eval import evaluate
from adaptkit.sample import sample_run
from adaptkit.io.run_dir import load_run
from adaptkit.train import FitConfig, GloObjective, fit, resume_config
from adaptkit.train.config import read_config_file
from adaptkit.train.tracking import Tracker
from runs import TINY_COND, fit_config, interrupt_on_call

SAMPLES = 48

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def no_downloaded_weights(tmp_path_factory, monkeypatch):
    """No Inception or AlexNet weights of this machine: the embedded networks evaluate."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))


def config(data_dir, out_dir, **changes) -> FitConfig:
    return fit_config(data_dir, out_dir, **{"eval_every": 10, "eval_samples": SAMPLES, "eval_metric": "intra_lpips",
                                            **changes})


def logged_evaluations(out) -> dict[int, dict[str, float]]:
    with open(out / "log.csv") as f:
        rows = {int(r["step"]): {k[5:]: float(v) for k, v in r.items() if k.startswith("eval_") and v}
                for r in csv.DictReader(f)}
    return {step: row for step, row in rows.items() if row}


def rescore(folder, blobs) -> float:
    """intra-cluster LPIPS of a saved run folder's samples, as fit scored them."""
    run = load_run(folder)
    train = load_image_folder(blobs, channels=3, resolution=16).images
    generated = sample_run(run, SAMPLES, seed=0)
    return evaluate(generated, train, train=train, extractor="embedded", diversity="feature-maps").intra_lpips


def test_the_best_logged_step_is_the_runs_model_and_the_last_is_beside_it(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run"))
    logged = logged_evaluations(out)
    assert sorted(logged) == [10, 20, 30, 40]
    assert set(logged[10]) == {"kid", "fid", "kmmd", "mean_variance", "lpips_diversity", "intra_lpips",
                               "memorization_ratio", "near_copies"}
    best = max(logged, key=lambda s: logged[s]["intra_lpips"])  # higher is better for intra-cluster LPIPS
    assert best != 40  # else this test could not tell the best step from the last
    summary = json.loads((out / "summary.json").read_text())["eval"]
    assert summary["best_step"] == best and summary["metric"] == "intra_lpips"
    assert summary["best"]["intra_lpips"] == logged[best]["intra_lpips"] and summary["last"]["step"] == 40
    for name in ("metrics.png", "nearest.png", "last/adapter_model.safetensors", "last/latents.safetensors"):
        assert (out / name).is_file(), name
    assert rescore(out, blobs) == pytest.approx(logged[best]["intra_lpips"], rel=1e-6)
    assert rescore(out / "last", blobs) == pytest.approx(logged[40]["intra_lpips"], rel=1e-6)
    best_adapter, last_adapter = (load_file(out / d / "adapter_model.safetensors") for d in (".", "last"))
    assert any(not torch.equal(best_adapter[k], last_adapter[k]) for k in best_adapter)


def test_with_ema_the_moving_average_is_what_is_scored_and_kept(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", steps=20, ema_decay=0.9))
    logged = logged_evaluations(out)
    best = json.loads((out / "summary.json").read_text())["eval"]["best_step"]
    assert rescore(out, blobs) == pytest.approx(logged[best]["intra_lpips"], rel=1e-6)
    assert rescore(out / "last", blobs) == pytest.approx(logged[20]["intra_lpips"], rel=1e-6)


def test_fid_picks_the_lowest_and_update_all_runs_keep_their_best_base_weights(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", adapter="none", unfreeze=["all"], eval_metric="fid", steps=20))
    logged = logged_evaluations(out)
    best = min(logged, key=lambda s: logged[s]["fid"])
    assert json.loads((out / "summary.json").read_text())["eval"]["best_step"] == best
    assert (out / "base_weights.safetensors").is_file() and (out / "last" / "base_weights.safetensors").is_file()
    assert load_run(out / "last").base is not None  # last/ records its base: a run folder of its own


class RecordingTracker(Tracker):
    def __init__(self) -> None:
        self.logged: dict[str, list[tuple[int, float]]] = {}

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.logged.setdefault(tag, []).append((step, value))


def test_the_tracker_gets_every_evaluation(tmp_path, blobs, monkeypatch):
    tracker = RecordingTracker()
    monkeypatch.setattr("adaptkit.train.loop.open_tracker", lambda *args, **kwargs: tracker)
    out = fit(config(blobs, tmp_path / "run", steps=10, eval_every=5))
    logged = logged_evaluations(out)
    for name in ("kid", "memorization_ratio", "near_copies"):
        assert tracker.logged[f"eval/{name}"] == [(step, logged[step][name]) for step in (5, 10)]


def test_resume_keeps_the_best_so_far(tmp_path, blobs, monkeypatch):
    reference = fit(config(blobs, tmp_path / "full"))
    with monkeypatch.context() as patch, pytest.raises(TrainingInterrupted):
        interrupt_on_call(patch, GloObjective, 26)  # after the evaluations of steps 10 and 20
        fit(config(blobs, tmp_path / "cut"))
    resumed = fit(resume_config(tmp_path / "cut"))
    assert logged_evaluations(resumed) == logged_evaluations(reference)
    eval_of = [json.loads((run / "summary.json").read_text())["eval"] for run in (reference, resumed)]
    assert eval_of[0]["best_step"] == eval_of[1]["best_step"] and eval_of[0]["best"] == eval_of[1]["best"]
    for folder in (".", "last"):
        a, b = (load_file(run / folder / "adapter_model.safetensors") for run in (reference, resumed))
        assert all(torch.equal(a[k], b[k]) for k in a), folder


def test_eval_options_from_the_cli_and_toml(tmp_path, blobs):
    toml = tmp_path / "fit.toml"
    toml.write_text('eval-every = 5\neval-metric = "kid"\neval-samples = 32\neval-real = "held-out"\n')
    assert read_config_file(toml) == {"eval_every": 5, "eval_metric": "kid", "eval_samples": 32,
                                      "eval_real": "held-out"}
    help_text = CliRunner().invoke(cli, ["fit", "--help"]).output
    for option in ("--eval-every", "--eval-real", "--eval-metric", "--eval-samples", "--eval-features"):
        assert option in help_text
    for changes, message in (({"eval_every": 0, "eval_real": str(blobs)}, "eval_real .* set eval_every"),
                             ({"eval_metric": "lpips"}, "eval_metric must be one of kid, fid, kmmd, intra_lpips"),
                             ({"eval_samples": 1}, "eval_samples must be at least 2")):
        with pytest.raises(ConfigError, match=message):
            fit(config(blobs, tmp_path / "bad", **changes))
    result = CliRunner().invoke(cli, ["fit", "--data", str(blobs), "--out", str(tmp_path / "cli"), "--base", TINY_COND,
                                      "--class", "1", "--perceptual", "none", "--steps", "4", "--eval-every", "2",
                                      "--eval-samples", "16", "--eval-real", str(blobs), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())["eval"]
    assert summary["metric"] == "kid" and summary["every"] == 2 and summary["samples"] == 16
    assert "best step" in result.output


def test_overwrite_replaces_an_evaluated_run_whole_and_keeps_the_users_files(tmp_path, blobs):
    out = fit(config(blobs, tmp_path / "run", steps=20))
    (out / "notes.txt").write_text("mine")
    fit(fit_config(blobs, out, overwrite=True, steps=10))  # no evaluation: the old run's eval files go
    for name in ("last", "metrics.png", "nearest.png"):
        assert not (out / name).exists(), name
    fit(config(blobs, out, overwrite=True, steps=10))  # the best step is the last: nearest.png from training
    assert json.loads((out / "summary.json").read_text())["eval"]["best_step"] == 10
    for name in ("metrics.png", "nearest.png", "last/adapter_model.safetensors"):
        assert (out / name).is_file(), name
    assert (out / "notes.txt").read_text() == "mine"


def test_a_nan_score_never_becomes_the_best_step(monkeypatch):
    from types import SimpleNamespace

    from adaptkit.train.evaluation import LOGGED_METRICS, TrainingEval

    scores = iter([float("nan"), 0.2, float("nan"), 0.5, 0.1])  # intra-cluster LPIPS: higher is better
    evaluator = TrainingEval(None, None, None, None, None, SimpleNamespace(eval_metric="intra_lpips"))
    monkeypatch.setattr(evaluator, "score", lambda nearest=None: SimpleNamespace(
        **{**dict.fromkeys(LOGGED_METRICS, 0.0), "intra_lpips": next(scores)}))
    assert [evaluator.measure(step) for step in (10, 20, 30, 40, 50)] == [True, True, False, True, False]
    assert evaluator.best["step"] == 40
