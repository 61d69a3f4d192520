"""Data-parallel `adaptkit fit`: two CPU processes (gloo) launched by torchrun write a normal run folder,
for glo and for the adversarial objective (whose resume stays bitwise)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adaptkit.io.run_dir import load_run
from adaptkit.train import FitConfig, fit
from imagefolder import blob_images, write_images

TESTS = Path(__file__).resolve().parent


def torchrun(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 -m adaptkit fit ARGS`` on the CPU in ``folder``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "adaptkit", "fit", *args, "--device", "cpu", "--quiet"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_two_process_data_parallel_run(tmp_path):
    write_images(tmp_path / "data", blob_images(10))
    done = torchrun(tmp_path, "--data", "data", "--out", "run", "--base", "python:models:tiny_cond_generator",
                    "--class", "1", "--perceptual", "none", "--steps", "6", "--batch-size", "10", "--log-every", "3",
                    "--samples", "4")
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert summary["final_losses"]["pixel"] < summary["first_losses"]["pixel"]
    assert done.stderr.count("10 images of") == 1  # only rank 0 reports
    for name in ("adapter_model.safetensors", "latents.safetensors", "samples.png", "reconstructions.png",
                 "interpolation.png", "loss.png", "log.csv"):
        assert (out / name).is_file(), name
    run = load_run(out)
    assert run.latents.shape == (10, 16) and run.latents.abs().sum() > 0


@pytest.mark.slow
def test_two_process_adversarial_run_and_bitwise_resume(tmp_path):
    for name in ("8", "9", "3"):  # two new classes of digits32 and an old one
        write_images(tmp_path / "data" / name, blob_images(4, resolution=32, seed=int(name))[:, :1])
    settings = {"adapter": "kpcbn", "objective": "adversarial", "freeze-d": 1, "batch-size": 6, "log-every": 1,
                "checkpoint-every": 2, "samples": 8}
    common = [arg for key, value in settings.items() for arg in (f"--{key}", str(value))]
    done = torchrun(tmp_path, *common, "--data", "data", "--out", "full", "--steps", "4")
    assert done.stderr.count("12 images of") == 1  # only rank 0 reports
    out = tmp_path / "full"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4 and summary["ema_decay"] == 0.999
    for name in ("adapter_model.safetensors", "samples.png", "loss.png", "log.csv"):
        assert (out / name).is_file(), name
    assert load_run(out).base.class_names[-2:] == ["8", "9"]

    # the same run in one process: the same draws, the discriminator's gradients averaged like the adapter's
    one = fit(FitConfig.from_dict({**settings, "data": str(tmp_path / "data"), "out": str(tmp_path / "one"),
                                   "steps": 4, "device": "cpu", "quiet": True}))
    last = "checkpoints/step-0000004.safetensors"
    a, b = load_file(str(out / last)), load_file(str(one / last))
    for part in ("objective/discriminator.", "adapter/"):
        keys = [k for k in a if k.startswith(part) and (part == "adapter/" or k.endswith(".original"))]
        gaps = torch.cat([(a[k] - b[k]).abs().flatten() for k in keys])
        assert (gaps > 1e-5).float().mean() < 0.01, part  # Adam (β1 = 0) may flip a near-zero gradient's step

    torchrun(tmp_path, *common, "--data", "data", "--out", "cut", "--steps", "2")
    torchrun(tmp_path, "--out", "cut", "--resume", "--steps", "4")
    for name in ("adapter_model.safetensors", "checkpoints/step-0000004.safetensors"):
        a, b = load_file(str(out / name)), load_file(str(tmp_path / "cut" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
