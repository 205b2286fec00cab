"""The local stack's shape, kept by its data folder and read by a shell that did not export it."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.config import stack_shape_file
from featurestore.config import write_stack_shape
from featurestore.config._stack_shape import STACK_SHAPE
from featurestore.errors import ConfigurationError

_CLUSTER = {
    "FEATURESTORE_KAFKA__BROKERS": "3",
    "FEATURESTORE_REDIS__CLUSTER": "true",
    "FEATURESTORE_REDIS__CLUSTER_REPLICAS": "0",
}


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A process environment naming only the data folder, as a new terminal would."""
    data_dir = tmp_path / "data"
    for key in STACK_SHAPE:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("FEATURESTORE_CONFIG", raising=False)
    monkeypatch.setenv("FEATURESTORE_DATA_DIR", str(data_dir))
    return data_dir


def _record(data_dir: Path, env: dict[str, str]) -> None:
    write_stack_shape(load_settings({"FEATURESTORE_DATA_DIR": str(data_dir), **env}))


def test_the_record_holds_every_shape_setting_and_nothing_else(shell: Path) -> None:
    _record(shell, _CLUSTER)
    lines = [line for line in stack_shape_file(shell).read_text().splitlines() if line[:1] != "#"]
    assert dict(line.split("=", 1) for line in lines) == {
        "FEATURESTORE_KAFKA__BROKERS": "3",
        "FEATURESTORE_REDIS__CLUSTER": "true",
        "FEATURESTORE_REDIS__CLUSTER_MASTERS": "3",
        "FEATURESTORE_REDIS__CLUSTER_REPLICAS": "0",
        "FEATURESTORE_SECURITY__ENABLED": "false",
    }
    assert [line.split("=", 1)[0] for line in lines] == list(STACK_SHAPE)


def test_a_shell_without_the_variables_reads_the_stack_as_it_was_started(shell: Path) -> None:
    assert load_settings().kafka.brokers == 1, "no record yet: the defaults"
    _record(shell, _CLUSTER)
    settings = load_settings()
    assert (settings.kafka.brokers, settings.redis.cluster) == (3, True)
    assert settings.redis.local_nodes == 3
    assert settings.kafka.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"


def test_the_environment_and_the_settings_file_win_over_the_record(
    shell: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(shell, _CLUSTER)
    monkeypatch.setenv("FEATURESTORE_KAFKA__BROKERS", "1")
    config = tmp_path / "featurestore.env"
    config.write_text("FEATURESTORE_REDIS__CLUSTER=false\n")
    monkeypatch.setenv("FEATURESTORE_CONFIG", str(config))
    settings = load_settings()
    assert (settings.kafka.brokers, settings.redis.cluster) == (1, False)
    assert settings.redis.cluster_replicas == 0, "what neither gives still comes from the record"


def test_a_mapping_given_is_the_whole_environment(shell: Path) -> None:
    _record(shell, _CLUSTER)
    assert load_settings({"FEATURESTORE_DATA_DIR": str(shell)}).kafka.brokers == 1


def test_a_secured_stack_is_read_secured(shell: Path) -> None:
    _record(shell, {"FEATURESTORE_SECURITY__ENABLED": "true"})
    settings = load_settings()
    assert settings.security.enabled
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.redis.tls


def test_a_damaged_record_is_refused_naming_its_line(shell: Path) -> None:
    _record(shell, _CLUSTER)
    path = stack_shape_file(shell)
    path.write_text(path.read_text().replace("BROKERS=3", "BROKERS=three"))
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{path}:3: FEATURESTORE_KAFKA__BROKERS" in message, message
