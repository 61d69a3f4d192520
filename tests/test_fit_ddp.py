"""Data-parallel `adaptkit fit`: two CPU processes (gloo) launched by torchrun write a normal run folder."""
import json
import os
import subprocess
import sys
from pathlib import Path

from adaptkit.io.run_dir import load_run
from imagefolder import blob_images, write_images

TESTS = Path(__file__).resolve().parent


def test_two_process_data_parallel_run(tmp_path):
    write_images(tmp_path / "data", blob_images(10))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "adaptkit", "fit", "--data", "data", "--out", "run", "--base", "python:models:tiny_cond_generator",
               "--class", "1", "--perceptual", "none", "--steps", "6", "--batch-size", "10", "--log-every", "3",
               "--samples", "4", "--device", "cpu", "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
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
