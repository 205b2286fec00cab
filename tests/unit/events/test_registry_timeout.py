"""The store's registry client gives up on a registry that accepts and never answers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from featurestore.config import SchemaRegistrySettings
from featurestore.config import load_settings
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.events import ConfluentSchemaStore


def test_a_silent_registry_is_reported_away_not_waited_for() -> None:
    """Confluent's client has no timeout of its own: this lookup waited for ever before."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:
        port = silent.getsockname()[1]
        settings = SchemaRegistrySettings(
            url=f"http://127.0.0.1:{port}", timeout_s=0.5, max_retries=0
        )
        seen: list[BaseException] = []

        def look_up() -> None:
            with ConfluentSchemaStore.from_settings(settings) as store:
                try:
                    store.schema_text(1)
                except BaseException as exc:
                    seen.append(exc)

        started = time.monotonic()
        caller = threading.Thread(target=look_up, daemon=True)
        caller.start()
        caller.join(20)
        assert not caller.is_alive(), "the lookup still waits for the silent registry"
    assert time.monotonic() - started < 10
    [error] = seen
    assert isinstance(error, BackendUnavailableError)
    assert f"schema registry at http://127.0.0.1:{port} is unreachable" in str(error)
    assert "timed out" in str(error)


def test_the_settings_take_the_timeout_and_retries_from_the_environment() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SCHEMA_REGISTRY__TIMEOUT_S": "2.5",
            "FEATURESTORE_SCHEMA_REGISTRY__MAX_RETRIES": "1",
        }
    )
    assert (settings.schema_registry.timeout_s, settings.schema_registry.max_retries) == (2.5, 1)
    with pytest.raises(ConfigurationError, match="TIMEOUT_S"):
        load_settings({"FEATURESTORE_SCHEMA_REGISTRY__TIMEOUT_S": "0"})
