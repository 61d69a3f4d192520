"""Never lose a run: --overwrite swaps the new run in only when complete, one writer per folder,
checkpoints never hold diverged values, save_adapter is all-or-nothing, clear lines for a full disk."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import adaptkit.io.checkpoint as checkpoint_module
from adaptkit import (
    AdapterConfigError,
    ConfigError,
    DiskFullError,
    FolderLockedError,
    InvalidCheckpointError,
    TrainingError,
    TrainingInterrupted,
    attach_adapter,
    save_adapter,
)
from adaptkit.io.folder_lock import folder_lock, lock_path
from adaptkit.train import FitConfig, GloObjective, fit, resume_config
from adaptkit.train.state import latest_checkpoint
from clitools import invoke, one_line_error
from imagefolder import blob_images, write_images
from models import tiny_cond_generator
from runs import change_loss, interrupt_on_call, nan_pixel

TINY = ["--base", "python:models:tiny_cond_generator", "--class", "1", "--perceptual", "none", "--samples", "4",
        "--quiet"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_images(folder, blob_images(6))
    return folder


def config(data, out, **changes) -> FitConfig:
    settings = dict(data=str(data), out=str(out), base="python:models:tiny_cond_generator", class_id="1",
                    perceptual="none", steps=4, log_every=2, checkpoint_every=2, samples=4, quiet=True)
    return FitConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def good_run(data, tmp_path_factory):
    return fit(config(data, tmp_path_factory.mktemp("good") / "run"))


def state(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def old_run(good_run, tmp_path):
    """A copy of a finished run, with a file of the user's, and its contents."""
    out = tmp_path / "k"
    shutil.copytree(good_run, out)
    (out / "notes.txt").write_text("mine")
    return out, state(out)


def ends_with_error(result, message: str) -> None:
    """A fit that printed its progress, then failed with one ``error: …`` line containing ``message``."""
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and result.stderr.strip().endswith(errors[0]), result.stderr


def leftovers(folder: Path) -> list[str]:
    """Hidden staging folders or lock files beside ``folder``."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


def test_overwrite_with_a_bad_adapter_option_leaves_the_old_run(data, old_run):
    out, before = old_run
    result = invoke("fit", "--data", data, "--out", out, *TINY, "--steps", "2", "--overwrite",
                    "--adapter-option", "reg_weight=abc")
    one_line_error(result, "option reg_weight of the bsa adapter must be a number, not 'abc'")
    assert state(out) == before and leftovers(out) == []


def test_overwrite_that_diverges_leaves_the_old_run(data, old_run):
    out, before = old_run
    result = invoke("fit", "--data", data, "--out", out, *TINY, "--steps", "6", "--overwrite",
                    "--lr-adapter", "1e30", "--checkpoint-every", "1")
    ends_with_error(result, f"training stopped and the previous run in {out} is left as it was")
    assert state(out) == before and leftovers(out) == []


def test_overwrite_replaces_the_run_when_complete_and_keeps_the_users_files(data, old_run):
    out, before = old_run
    fit(config(data, out, steps=3, seed=5, overwrite=True))
    after = state(out)
    assert after["notes.txt"] == b"mine" and after["adapter_model.safetensors"] != before["adapter_model.safetensors"]
    assert sorted(n for n in after if n.startswith("checkpoints/")) == ["checkpoints/step-0000003.json",
                                                                       "checkpoints/step-0000003.safetensors"]
    assert json.loads(after["summary.json"])["steps"] == 3 and leftovers(out) == []


def test_overwrite_stopped_by_ctrl_c_becomes_the_run_to_resume(data, old_run, monkeypatch):
    out, _ = old_run
    interrupt_on_call(monkeypatch, GloObjective, 3)
    with pytest.raises(TrainingInterrupted, match=f"continue with: adaptkit fit --out {out} --resume"):
        fit(config(data, out, steps=4, seed=5, overwrite=True))
    monkeypatch.undo()
    assert latest_checkpoint(out / "checkpoints").name == "step-0000003.json"
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    assert (out / "notes.txt").exists() and leftovers(out) == []
    fit(resume_config(out))
    assert json.loads((out / "summary.json").read_text())["steps"] == 4


def test_the_staging_folder_of_a_killed_overwrite_is_cleared_by_the_next_run(data, old_run):
    out, _ = old_run
    stale = out.with_name(f".{out.name}.0123456789ab.tmp")  # what an --overwrite run killed by -9 leaves
    (stale / "checkpoints").mkdir(parents=True)
    mine = out.with_name(f".{out.name}.notes")
    mine.write_text("not adaptkit's")
    fit(config(data, out, steps=2, overwrite=True))
    assert leftovers(out) == [mine.name]


def test_a_swap_killed_between_its_renames_gets_the_previous_run_back(data, old_run):
    out, before = old_run
    out.rename(out.with_name(f".{out.name}.0123456789ab.old"))  # killed after moving the old run aside
    out.with_name(f".{out.name}.ba9876543210.tmp").mkdir()  # the new one was never renamed in
    with pytest.raises(ConfigError, match="is not empty"):  # the next run finds the previous one back
        fit(config(data, out, steps=2))
    assert state(out) == before and leftovers(out) == []


class InfiniteGradient(torch.autograd.Function):
    """Zero in the forward pass, an infinite gradient in the backward pass: a finite loss whose
    update makes the trained values non-finite (what a too high rate does)."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.sum() * 0

    @staticmethod
    def backward(ctx, grad):
        return torch.full(ctx.shape, float("inf"))


def test_divergence_never_leaves_a_non_finite_last_checkpoint_to_resume(data, tmp_path, monkeypatch):
    change_loss(monkeypatch, GloObjective, lambda call: call == 3,  # the update blows up
                lambda objective, terms: {**terms, "pixel": terms["pixel"] + InfiniteGradient.apply(objective.latents)})
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="the update of step 3 made the trained values non-finite"):
        fit(config(data, out, steps=6, log_every=1, checkpoint_every=1))
    last = latest_checkpoint(out / "checkpoints")
    assert last.name == "step-0000002.json"
    assert all(torch.isfinite(t).all() for t in load_file(str(last.with_suffix(".safetensors"))).values()
               if t.is_floating_point())
    monkeypatch.undo()
    fit(resume_config(out))  # resumes from finite values, not NaN
    assert json.loads((out / "summary.json").read_text())["steps"] == 6


def test_a_checkpoint_whose_values_give_a_nan_loss_is_dropped(data, tmp_path, monkeypatch):
    change_loss(monkeypatch, GloObjective, lambda call: call >= 4, nan_pixel)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"non-finite by step 4 .*step-0000002\.json\) is kept"):
        fit(config(data, out, steps=6, log_every=3, checkpoint_every=1))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000002.json",
                                                                    "step-0000002.safetensors"]


def test_resume_refuses_a_checkpoint_holding_nan(data, tmp_path):
    out = fit(config(data, tmp_path / "run", steps=2))
    ckpt = latest_checkpoint(out / "checkpoints").with_suffix(".safetensors")
    tensors = load_file(str(ckpt))
    name = next(k for k in tensors if k.startswith("adapter/"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    from safetensors.torch import save_file
    save_file(tensors, str(ckpt))
    with pytest.raises(InvalidCheckpointError, match=f"tensor '{name}' holds NaN"):
        fit(resume_config(out, steps=4))


def test_a_second_writer_gets_one_line_naming_the_holder(data, tmp_path):
    out = tmp_path / "race"
    with folder_lock(out, "adaptkit fit --out race"):
        result = invoke("fit", "--data", data, "--out", out, *TINY, "--steps", "2")
        one_line_error(result, f"{out} is being written by adaptkit fit --out race (pid {os.getpid()} on ")
        with pytest.raises(FolderLockedError):
            fit(config(data, out, steps=2))
    assert not out.exists() and not lock_path(out).exists()


def test_a_lock_left_by_a_killed_process_is_stale(data, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(  # another process holding the lock the way folder_lock does (stdlib only: fast)
        [sys.executable, "-c", "import fcntl, json, os, socket, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
         "os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'started': 'now', "
         "'command': 'adaptkit fit'}).encode())\nprint('held', flush=True)\ntime.sleep(120)", str(lock_path(out))],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FolderLockedError, match=f"pid {holder.pid} on "):
        fit(config(data, out, steps=2))
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_path(out).exists()  # left behind, naming a dead process
    fit(config(data, out, steps=2))
    assert (out / "summary.json").exists() and not lock_path(out).exists()


def test_sampling_into_a_run_being_written_is_refused(good_run):
    with folder_lock(good_run, "adaptkit fit --resume"):
        one_line_error(invoke("sample", good_run, "-n", "2", "--device", "cpu"), "is being written by adaptkit fit")
        one_line_error(invoke("interpolate", good_run, "--device", "cpu"), "is being written by adaptkit fit")
    assert not (good_run / "samples_0.png").exists()


def test_adapter_options_are_checked_by_type_when_attached():
    with pytest.raises(AdapterConfigError, match="option reg_weight of the bsa adapter must be a number, not 'abc'"):
        attach_adapter(tiny_cond_generator(), "bsa", reg_weight="abc")
    with pytest.raises(AdapterConfigError, match="option train_conditional of the bsa adapter must be true or false"):
        attach_adapter(tiny_cond_generator(), "bsa", train_conditional="yes")
    with pytest.raises(AdapterConfigError, match="option init of the kpcbn adapter must be a string or a list of "
                                                 "integers, not"):
        attach_adapter(tiny_cond_generator(), "kpcbn", init=[1, "a"])
    assert attach_adapter(tiny_cond_generator(), "bsa", reg_weight=1).config.reg_weight == 1  # an int is a number


@pytest.fixture
def saved(tmp_path):
    """An adapter folder with a file of the user's, its contents, and a handle to save again."""
    handle = attach_adapter(tiny_cond_generator(), "bsa")
    folder = save_adapter(handle, tmp_path / "adapter")
    (folder / "notes.txt").write_text("mine")
    return folder, state(folder), handle


def test_save_adapter_of_nan_values_leaves_the_folder(saved):
    folder, before, handle = saved
    with torch.no_grad():
        next(iter(handle.parameters())).fill_(float("nan"))
    with pytest.raises(InvalidCheckpointError, match="holds NaN or infinite values"):
        save_adapter(handle, folder)
    assert state(folder) == before and leftovers(folder) == []


def test_save_adapter_on_a_full_disk_leaves_the_folder(saved, monkeypatch):
    folder, before, handle = saved
    with torch.no_grad():
        next(iter(handle.parameters())).add_(1)

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint_module, "write_json", full)
    with pytest.raises(DiskFullError, match="the disk is full"):
        save_adapter(handle, folder)
    assert state(folder) == before and leftovers(folder) == []


def test_save_adapter_replaces_the_adapter_and_keeps_other_files(saved):
    folder, before, handle = saved
    with torch.no_grad():
        next(iter(handle.parameters())).add_(1)
    save_adapter(handle, folder)
    after = state(folder)
    assert after["notes.txt"] == b"mine" and after["adapter_model.safetensors"] != before["adapter_model.safetensors"]


def test_full_disk_and_denied_permission_are_one_line(data, tmp_path, monkeypatch):
    import adaptkit.train.loop as loop
    for errno, text, line in [(28, "No space left on device", "the disk is full"),
                              (13, "Permission denied", "permission denied")]:
        out = tmp_path / f"run{errno}"

        def fails(*args, **kwargs):
            raise OSError(errno, text, str(out / "checkpoints"))

        monkeypatch.setattr(loop, "save_checkpoint", fails)
        result = invoke("fit", "--data", data, "--out", out, *TINY, "--steps", "2")
        ends_with_error(result, f"{line} ({out / 'checkpoints'}): ")
