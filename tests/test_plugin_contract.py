"""The plugin contract: documented in one page, a per-handle shared-state slot, class addition only
through ``Adapter.new_classes``, base recommendations without bases naming adapters."""
import dataclasses
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import adaptkit.core as core
from adaptkit import ConfigError, load_adapter, save_adapter
from adaptkit.bases import load_base
from adaptkit.core import ADAPTERS, Adapter, AdapterConfig, LayerInfo, attach_adapter
from adaptkit.train.plan import new_class_folders
from models import tiny_cond_generator

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "plugins.md").read_text()


def contract_members() -> list[str]:
    """Every hook and class attribute ``Adapter`` itself defines (not those of nn.Module)."""
    return [n for n in vars(Adapter) if n == "__init__" or not n.startswith("_")]


def documented(name: str) -> bool:
    return re.search(rf"`{re.escape(name)}[`(]", PAGE) is not None


@pytest.mark.parametrize("name", contract_members())
def test_every_hook_is_documented(name):
    assert documented(name), f"docs/plugins.md does not describe Adapter.{name}"


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(LayerInfo)])
def test_every_layer_info_field_is_documented(name):
    assert documented(name), f"docs/plugins.md does not describe LayerInfo.{name}"


@pytest.mark.parametrize("name", [n for n in core.__all__ if n.endswith("Error")])
def test_every_error_core_exports_is_documented(name):
    assert documented(name)


def test_contract_names_the_hooks_it_needs():
    members = set(contract_members())
    assert {"shared_state", "new_classes", "request_new_classes", "base_options", "baked_config",
            "recommended_lr", "transform"} <= members


def test_attach_adapter_requires_the_adapter():
    assert inspect.signature(attach_adapter).parameters["adapter"].default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        attach_adapter(tiny_cond_generator())  # type: ignore[call-arg]


@dataclass
class OffsetConfig(AdapterConfig):
    extra_classes: int = 0
    baked: bool = False


class SharedOffset(Adapter):
    """One learned offset for every layer (shared state), times a per-layer scale."""

    name = "shared-offset"
    Config = OffsetConfig

    def __init__(self, layer, info, config):
        super().__init__(layer, info, config)
        self.scale = nn.Parameter(torch.ones(()))

    @classmethod
    def default_targets(cls, model, config):
        return core.norm_layers(model)[:2]

    @classmethod
    def shared_state(cls, model, call, config):
        return nn.ParameterDict({"offset": torch.zeros(()), "classes": torch.zeros(call.num_classes)})

    def transform(self, layer, args, kwargs, output, ctx):
        return output * self.scale + self.info.shared["offset"]

    @classmethod
    def baked_config(cls, config):
        return None if config.baked else dataclasses.replace(config, baked=True)

    def baked_state_dict(self):
        return {"scale": self.scale.detach() * 1}

    @classmethod
    def new_classes(cls, config):
        return config.extra_classes

    @classmethod
    def request_new_classes(cls, options, count):
        return {"extra_classes": count, **options}


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(ADAPTERS._local, SharedOffset.name, SharedOffset)


def test_shared_state_lives_on_the_handle_once_and_round_trips(registered, cond_inputs, tmp_path):
    model = tiny_cond_generator()
    handle = attach_adapter(model, SharedOffset.name)
    assert all(a.info.shared is handle.shared for _, _, a in handle.layers())
    assert handle.shared["classes"].shape == (4,)  # sized from the model's num_classes
    assert sorted(k for k in handle.state_dict() if "offset" in k) == ["shared.offset"]
    with torch.no_grad():
        handle.shared["offset"].fill_(0.5)
    out = model(*cond_inputs)
    handle.bake()  # the baked form keeps the shared state
    assert handle.config.baked and torch.equal(handle.shared["offset"], torch.tensor(0.5))
    assert torch.allclose(model(*cond_inputs), out)
    path = save_adapter(handle, tmp_path / "ad")
    handle.detach()
    fresh = tiny_cond_generator()
    loaded = load_adapter(fresh, path)
    assert torch.equal(loaded.shared["offset"], torch.tensor(0.5))
    assert torch.allclose(fresh(*cond_inputs), out)


def test_shared_state_must_be_a_module(monkeypatch):
    class Broken(SharedOffset):
        @classmethod
        def shared_state(cls, model, call, config):
            return torch.zeros(())

    model = tiny_cond_generator()
    with pytest.raises(core.AdaptkitError, match="not an nn.Module"):
        attach_adapter(model, Broken)
    assert not core.attached_adapters(model)


def test_fit_adds_classes_through_the_contract_not_a_field_name(registered):
    """An adapter whose class count is any field (here ``extra_classes``) gets the folder count."""
    base = load_base("python:fit_bases:tiny_cond_base")
    data = SimpleNamespace(folders=["1", "cats", "dogs", None], root="data")
    options: dict = {}
    assert new_class_folders(data, base, SharedOffset.name, options) == ["cats", "dogs"]
    assert options == {"extra_classes": 2}
    with pytest.raises(ConfigError, match=r"options add 3 class\(es\), but 2 class folder"):
        new_class_folders(data, base, SharedOffset.name, {"extra_classes": 3})
    assert new_class_folders(data, base, "bsa", {}) is None  # bsa adds no classes


def test_bases_recommend_through_layer_roles_not_adapter_names():
    base = load_base("python:fit_bases:projected_base")
    assert base.layer_roles == {"latent_projection": "linear"}
    assert base.adapter_options("bsa")["targets"][0] == "linear"
    assert base.adapter_options("pwgconv") == {}
    source = "\n".join(p.read_text() for p in (ROOT / "adaptkit" / "bases").glob("*.py"))
    source += "\n".join(p.read_text() for p in (ROOT / "adaptkit" / "core").glob("*.py"))
    for plugin in ("bsa", "pwgconv", "kpcbn"):
        assert not re.search(rf"[\"']{plugin}[\"']", source), f"core or bases name the {plugin!r} plugin"
