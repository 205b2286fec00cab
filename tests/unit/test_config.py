from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.errors import ConfigurationError


def test_defaults_are_loopback() -> None:
    settings = load_settings({})
    assert settings.kafka.bootstrap == "127.0.0.1:19092"
    assert settings.schema_registry.url == "http://127.0.0.1:18081"
    assert settings.redis.url == "redis://127.0.0.1:16379/0"
    assert "port=15432" in settings.postgres.dsn
    assert settings.data_dir == Path(".stack")


def test_nested_variables_override() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_KAFKA__PORT": "29092",
            "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": "broker-a:9092,broker-b:9092",
            "FEATURESTORE_TOPICS__TRADES": "equity-trades",
            "FEATURESTORE_SCHEMA_REGISTRY__URL": "http://registry:8081",
            "UNRELATED": "x",
        }
    )
    assert settings.kafka.port == 29092
    assert settings.kafka.bootstrap == "broker-a:9092,broker-b:9092"
    assert settings.topics.trades == "equity-trades"
    assert settings.schema_registry.url == "http://registry:8081"


def test_config_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "featurestore.env"
    config.write_text("# comment\nFEATURESTORE_REDIS__PORT=26379\nFEATURESTORE_GRPC__PORT=1234\n")
    settings = load_settings(
        {"FEATURESTORE_CONFIG": str(config), "FEATURESTORE_GRPC__PORT": "4321"}
    )
    assert settings.redis.port == 26379
    assert settings.grpc.port == 4321


def test_bad_value_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="FEATURESTORE_KAFKA__PORT: Input should be"):
        load_settings({"FEATURESTORE_KAFKA__PORT": "not-a-port"})


def test_unknown_field_in_a_section_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="FEATURESTORE_KAFKA__PROT"):
        load_settings({"FEATURESTORE_KAFKA__PROT": "1"})


def test_settings_env_round_trips(tmp_path: Path) -> None:
    original = load_settings(
        {
            "FEATURESTORE_DATA_DIR": str(tmp_path),
            "FEATURESTORE_POSTGRES__PASSWORD": "s3cret",
            "FEATURESTORE_MLFLOW__TRACKING_URI": "http://mlflow:5000",
        }
    )
    rebuilt = load_settings(settings_env(original))
    assert rebuilt == original
    assert rebuilt.postgres.password.get_secret_value() == "s3cret"


def test_a_three_broker_stack_lists_every_node_for_bootstrap() -> None:
    kafka = load_settings({"FEATURESTORE_KAFKA__BROKERS": "3"}).kafka
    assert kafka.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert [kafka.node_ports(n) for n in (1, 2, 3)] == [
        (19092, 19093),
        (19094, 19095),
        (19096, 19097),
    ]
    settings = load_settings({"FEATURESTORE_KAFKA__BROKERS": "3"})
    assert load_settings(settings_env(settings)).kafka.bootstrap == kafka.bootstrap


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"FEATURESTORE_KAFKA__REPLICATION_FACTOR": "3"}, "FEATURESTORE_KAFKA__BROKERS=1"),
        (
            {"FEATURESTORE_KAFKA__BROKERS": "3", "FEATURESTORE_KAFKA__REPLICATION_FACTOR": "2",
             "FEATURESTORE_KAFKA__MIN_INSYNC_REPLICAS": "3"},
            "FEATURESTORE_KAFKA__MIN_INSYNC_REPLICAS=3",
        ),
        (
            {"FEATURESTORE_KAFKA__BROKERS": "3", "FEATURESTORE_KAFKA__CONTROLLER_PORT": "19094"},
            "ports overlap",
        ),
        ({"FEATURESTORE_KAFKA__BROKERS": "0"}, "FEATURESTORE_KAFKA__BROKERS"),
    ],
)  # fmt: skip
def test_replication_and_broker_settings_are_checked(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        load_settings(env)


def test_an_external_cluster_is_not_checked_against_the_local_broker_count() -> None:
    kafka = load_settings(
        {
            "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": "a:9092,b:9092,c:9092",
            "FEATURESTORE_KAFKA__REPLICATION_FACTOR": "3",
        }
    ).kafka
    assert (kafka.brokers, kafka.replication_factor) == (1, 3)
