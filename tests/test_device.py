"""One device rule for every command: ``auto`` is CUDA, then MPS, then CPU; bad names are one line."""
import pytest
import torch

from adaptkit.device import select_device
from adaptkit.errors import ConfigError
from clitools import invoke, one_line_error
from imagefolder import blob_images, write_images


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="device 'nope' is not a device: use cpu, cuda, cuda:N, mps or auto"):
        select_device("nope")


@pytest.mark.parametrize("command", ["fit", "sample"])
def test_every_command_uses_the_one_rule(tmp_path, command):
    write_images(tmp_path / "data", blob_images(2))
    args = {"fit": ["--data", tmp_path / "data", "--out", tmp_path / "run", "--perceptual", "none", "--class", "1"],
            "sample": []}[command]
    result = invoke(command, "--base", "python:models:tiny_cond_generator", "--device", "nope", *args)
    one_line_error(result, "device 'nope' is not a device: use cpu, cuda, cuda:N, mps or auto")
