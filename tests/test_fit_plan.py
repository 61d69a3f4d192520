"""The fit plan: every setting ``fit`` can check is checked before the run folder is locked or
written, the adapter plugin is resolved once, and a run folder may hold its own training images."""
from pathlib import Path

import pytest
import torch

from adaptkit.core import ADAPTERS
from adaptkit.demo import run_demo
from adaptkit.errors import AdapterConfigError, ConfigError, DataError
from adaptkit.io.folder_lock import lock_path
from adaptkit.train import fit
from adaptkit.train.plan import plan_fit
from imagefolder import blob_images, write_images
from runs import fit_config

pytestmark = pytest.mark.usefixtures("one_thread")


def empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize("data, changes, error, message", [
    (None, dict(unfreeze=["nope"]), ConfigError, "unfreeze='nope' matches no layer of the base"),
    (None, dict(unfreeze=["("]), ConfigError, "unfreeze='\\(' is not a valid regular expression"),
    (None, dict(adapter_options={"nope": 1}), AdapterConfigError, "unknown option"),
    (None, dict(class_id="9"), DataError, "class_id: class 9 is out of range"),
    (None, dict(objective="adversarial", discriminator="base"), ConfigError, "has no discriminator"),
    (empty_folder, {}, DataError, "no images in"),
])
def test_a_bad_setting_leaves_no_folder_and_no_file(tmp_path, blobs, data, changes, error, message):
    images = data(tmp_path) if data else blobs
    before = sorted(tmp_path.iterdir())
    with pytest.raises(error, match=message) as info:
        fit(fit_config(images, tmp_path / "runs" / "run", steps=2, **changes))
    assert "--" not in str(info.value)
    assert sorted(tmp_path.iterdir()) == before  # no runs/, no lock file, nothing staged


def test_the_plan_decides_the_folder_and_writes_nothing(tmp_path, blobs):
    out = tmp_path / "run"
    plan = plan_fit(fit_config(blobs, out), torch.device("cpu"))
    assert not out.exists() and not lock_path(out).exists()
    assert not plan.folder.replace and plan.folder.resume_from is None
    assert plan.adapter is ADAPTERS.get("bsa") and plan.config.invert in ("yes", "no")
    fit(fit_config(blobs, out, steps=2, checkpoint_every=2))
    assert plan_fit(fit_config(blobs, out, overwrite=True), torch.device("cpu")).folder.replace
    resumed = plan_fit(fit_config(blobs, out, steps=4, checkpoint_every=2, resume=True), torch.device("cpu"))
    assert resumed.folder.resume_from.parent == out / "checkpoints" and not resumed.folder.replace
    with pytest.raises(ConfigError, match="is not empty"):
        plan_fit(fit_config(blobs, out), torch.device("cpu"))


def test_the_adapter_plugin_is_resolved_once(tmp_path, blobs, monkeypatch):
    lookups = []
    get = ADAPTERS.get

    def counted(name):
        lookups.append(name)
        return get(name)

    monkeypatch.setattr(ADAPTERS, "get", counted)
    fit(fit_config(blobs, tmp_path / "run", steps=4, log_every=2, collapse_check_every=2, checkpoint_every=2))
    assert lookups == ["bsa"]


def test_a_run_folder_may_hold_its_own_training_images(tmp_path):
    out = tmp_path / "run"
    write_images(out / "data", blob_images(6))
    fit(fit_config(out / "data", out, steps=2))
    assert (out / "summary.json").is_file() and len(list((out / "data").iterdir())) == 6
    with pytest.raises(ConfigError, match=f"{out} is not empty"):
        fit(fit_config(out / "data", out, steps=2))


def test_the_demo_checks_its_settings_before_writing_its_images(tmp_path):
    with pytest.raises(ConfigError, match="steps must be positive"):
        run_demo(tmp_path / "demo", steps=0)
    assert not (tmp_path / "demo").exists()
