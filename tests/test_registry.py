"""Entry-point discovery: lazy loading, unknown names, broken plugins reported by name."""
from importlib import metadata

import pytest

from adaptkit import PluginLoadError, PluginNotFoundError, attach_adapter, list_adapters
from adaptkit.core.registry import Registry
from adaptkit_plugins.bsa import FilmAdapter
from models import tiny_cond_generator


def test_builtins_are_entry_points():
    rows = {r.name: r for r in list_adapters()}
    assert rows["bsa"].value == "adaptkit_plugins.bsa:FilmAdapter"
    assert rows["bsa"].distribution == "adaptkit" and rows["bsa"].error is None
    assert rows["film"].value == rows["bsa"].value


def test_unknown_adapter():
    with pytest.raises(PluginNotFoundError, match=r"unknown adapter 'nope' \(available: .*bsa"):
        attach_adapter(tiny_cond_generator(), "nope")


def test_broken_plugin_is_reported_and_others_work(monkeypatch):
    eps = [
        metadata.EntryPoint("good", "adaptkit_plugins.bsa:FilmAdapter", "g"),
        metadata.EntryPoint("broken", "no_such_module_xyz:Thing", "g"),
        metadata.EntryPoint("notanadapter", "adaptkit.errors:AdaptkitError", "g"),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps if group == "g" else [])
    reg = Registry("g", "adapter")
    assert reg.get("good") is FilmAdapter
    with pytest.raises(PluginLoadError, match="'broken' .*failed to load: ModuleNotFoundError"):
        reg.get("broken")
    infos = {i.name: i for i in reg.info()}
    assert infos["good"].error is None and "ModuleNotFoundError" in infos["broken"].error


def test_in_process_registration_and_adapter_class_check(monkeypatch):
    from adaptkit.core import ADAPTERS

    monkeypatch.setattr(ADAPTERS, "_local", {"mine": FilmAdapter, "bad": object})
    assert attach_adapter(tiny_cond_generator(), "mine").adapter_cls is FilmAdapter
    with pytest.raises(PluginLoadError, match="does not name an adaptkit.Adapter subclass"):
        attach_adapter(tiny_cond_generator(), "bad")
