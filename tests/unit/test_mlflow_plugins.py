"""An MLflow REST call does not load Feast's header plugin (which imports all of Feast)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from featurestore.mlflow_plugins import FEAST_PLUGIN_PREFIX
from featurestore.mlflow_plugins import skip_feast_header_provider

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


def _fresh(code: str, **env: str) -> str:
    """What ``code`` prints in a new interpreter (MLFLOW_DISABLE_TELEMETRY as given, else unset)."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_mlflow_client_telemetry_is_off_unless_a_user_turns_it_on() -> None:
    # Its thread deletes an environment variable while others may read os.environ (KeyError).
    code = (
        "import os; from models._mlflow import mlflow; "
        "from mlflow.telemetry.client import get_telemetry_client; "
        "print(os.environ['MLFLOW_DISABLE_TELEMETRY'], get_telemetry_client() is None)"
    )
    assert _fresh(code) == "true True"
    assert _fresh(code, MLFLOW_DISABLE_TELEMETRY="false").split()[0] == "false"
