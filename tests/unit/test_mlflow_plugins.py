"""An MLflow REST call does not load Feast's header plugin (which imports all of Feast)."""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

import pytest

from featurestore.mlflow_plugins import FEAST_PLUGIN_PREFIX, skip_feast_header_provider

_REGISTRY = "mlflow.tracking.request_header.registry"
_GROUP = "mlflow.request_header_provider"


def _provider_modules() -> list[str]:
    registry = importlib.import_module(_REGISTRY)
    return [type(p).__module__ for p in registry._request_header_provider_registry]


@pytest.fixture
def unbuilt_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's providers not built yet in this process, as in a process that just started."""
    importlib.import_module("mlflow.utils.plugins")
    monkeypatch.delitem(sys.modules, _REGISTRY, raising=False)


def test_feast_registers_the_plugin_this_module_leaves_out() -> None:
    # Without it there is nothing to skip, and this module can go.
    values = [e.value for e in entry_points(group=_GROUP)]
    assert any(v.startswith(FEAST_PLUGIN_PREFIX) for v in values), values


def test_the_providers_are_built_without_feasts(unbuilt_registry: None) -> None:
    import mlflow.utils.plugins as plugins

    lookup = plugins.get_entry_points
    skip_feast_header_provider()
    modules = _provider_modules()
    assert modules, "MLflow's own providers are kept"
    assert not [m for m in modules if m.startswith(FEAST_PLUGIN_PREFIX)]
    assert plugins.get_entry_points is lookup  # the lookup is put back
    feast = [e for e in lookup(_GROUP) if e.value.startswith(FEAST_PLUGIN_PREFIX)]
    assert feast  # other groups' and later lookups still see every plugin


def test_models_mlflow_leaves_it_out_at_import(
    unbuilt_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "models._mlflow", raising=False)
    importlib.import_module("models._mlflow")
    assert _REGISTRY in sys.modules
    assert not [m for m in _provider_modules() if m.startswith(FEAST_PLUGIN_PREFIX)]
