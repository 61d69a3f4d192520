"""Entry-point discovery: lazy loading, unknown names, broken plugins and base factories reported by name."""
from importlib import metadata

import pytest

from adaptkit import BaseFactoryError, PluginLoadError, PluginNotFoundError, attach_adapter, list_adapters
from adaptkit.bases import BASES, load_base
from adaptkit.core.registry import Registry
from adaptkit_plugins.bsa import FilmAdapter
from fit_bases import broken_base
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


def test_a_base_factory_that_raises_is_one_base_factory_error(monkeypatch):
    monkeypatch.setattr(BASES, "_local", {"broken": broken_base})
    for spec in ("broken", "python:fit_bases:broken_base"):
        with pytest.raises(BaseFactoryError) as info:
            load_base(spec)
        assert str(info.value) == f"base {spec}: its factory raised RuntimeError: no weights in /nowhere"
