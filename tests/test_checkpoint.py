"""Adapter checkpoints: exact round trips, base fingerprints, corrupt and invalid files."""
import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from adaptkit import (BaseMismatchError, CheckpointError, InvalidCheckpointError, attach_adapter, load_adapter,
                      save_adapter)
from models import biggan_deep, biggan_inputs, tiny_cond_generator
from test_attach import perturb


@pytest.fixture
def saved(tmp_path, cond_gen, cond_inputs):
    handle = attach_adapter(cond_gen, "bsa", reg_weight=0.1, train_conditional=True)
    perturb(handle)
    out = cond_gen(*cond_inputs)
    path = save_adapter(handle, tmp_path / "ad", base_id="tests/tiny", metadata={"note": "x"})
    return path, out, handle


def test_round_trip_is_exact(saved, cond_inputs):
    path, out, handle = saved
    fresh = tiny_cond_generator()
    loaded = load_adapter(fresh, path)
    assert torch.equal(fresh(*cond_inputs), out)
    assert loaded.targets == handle.targets and loaded.config == handle.config
    assert loaded.metadata == {"note": "x"}


def test_files_hold_only_adapter_tensors(saved):
    path, _, handle = saved
    assert sorted(p.name for p in path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    tensors = load_file(str(path / "adapter_model.safetensors"))
    assert set(tensors) == set(handle.state_dict())
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["adapter"] == "bsa" and config["plugin"]["distribution"] == "adaptkit"
    assert config["config"] == {"reg_weight": 0.1, "adapt_first_linear": False, "train_conditional": True}
    assert config["base"]["id"] == "tests/tiny" and config["base"]["fingerprint"].startswith("sha256:")
    assert "block1.bn1" in config["base"]["layers"]


def test_checkpoint_size_close_to_tensor_bytes(saved):
    path, _, handle = saved
    raw = sum(t.numel() * t.element_size() for t in handle.state_dict().values())
    size = (path / "adapter_model.safetensors").stat().st_size
    assert raw <= size <= raw + 4096


def test_other_base_fails_naming_layers(saved):
    path, _, _ = saved
    other = tiny_cond_generator(ch=8)
    with pytest.raises(BaseMismatchError, match=r"different base \(made for tests/tiny\): block1\.bn1: differs"):
        load_adapter(other, path)
    assert all(p.requires_grad for p in other.parameters())  # untouched
    with pytest.raises(BaseMismatchError, match="missing from this model"):
        load_adapter(biggan_deep(), path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "remove"])
def test_corrupt_weights(saved, damage):
    path, _, _ = saved
    file = path / "adapter_model.safetensors"
    if damage == "truncate":
        file.write_bytes(file.read_bytes()[:-20])
    elif damage == "garbage":
        file.write_bytes(b"\x00" * 64)
    else:
        file.unlink()
    model = tiny_cond_generator()
    with pytest.raises(CheckpointError, match="corrupt or truncated|has no adapter_model"):
        load_adapter(model, path)
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_config(tmp_path, saved):
    path, _, _ = saved
    with pytest.raises(CheckpointError, match="does not exist"):
        load_adapter(tiny_cond_generator(), tmp_path / "nowhere")
    (path / "adapter_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_adapter(tiny_cond_generator(), path)
    (path / "adapter_config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not an adaptkit adapter config"):
        load_adapter(tiny_cond_generator(), path)


def edit_json(file, edit) -> None:
    data = json.loads(file.read_text())
    edit(data)
    file.write_text(json.dumps(data))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("base"), "field 'base' is missing"),
    (lambda c: c.pop("targets"), "field 'targets' is missing"),
    (lambda c: c.update(adapter=3), "field 'adapter' must be a string, not a number"),
    (lambda c: c.update(targets="block1.bn1"), "field 'targets' must be a list, not a string"),
    (lambda c: c.update(targets=["block1.bn1", 2]), "field 'targets' must be a list of strings"),
    (lambda c: c.update(config=None), "field 'config' must be an object, not null"),
    (lambda c: c["base"].pop("fingerprint"), "field 'base.fingerprint' is missing"),
    (lambda c: c["base"].update(layers=[]), "field 'base.layers' must be an object, not a list"),
    (lambda c: c.update(call={"latent": 0, "colour": 1}), "field 'call' has unknown keys ['colour']"),
])
def test_invalid_config_names_the_file_and_field(saved, edit, message):
    path, _, _ = saved
    edit_json(path / "adapter_config.json", edit)
    model = tiny_cond_generator()
    with pytest.raises(InvalidCheckpointError, match=re.escape(f"{path / 'adapter_config.json'}: {message}")):
        load_adapter(model, path)
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_adapter_tensors_are_refused(saved, bad):
    path, _, _ = saved
    file = path / "adapter_model.safetensors"
    tensors = load_file(str(file))
    name = sorted(tensors)[0]
    tensors[name].view(-1)[0] = bad
    save_file(tensors, str(file))
    model = tiny_cond_generator()
    with pytest.raises(InvalidCheckpointError, match=re.escape(f"{file}: tensor {name!r} holds NaN or infinite")):
        load_adapter(model, path)
    assert all(not m._forward_hooks for m in model.modules())


def test_biggan_round_trip(tmp_path):
    model = biggan_deep()
    inputs = biggan_inputs(model)
    handle = attach_adapter(model, "bsa", train_conditional=True, targets=r".*bn_\d")
    perturb(handle)
    with torch.no_grad():
        out = model(*inputs)
    save_adapter(handle, tmp_path / "bg")
    fresh = biggan_deep()
    load_adapter(fresh, tmp_path / "bg")
    with torch.no_grad():
        assert torch.equal(fresh(*inputs), out)
