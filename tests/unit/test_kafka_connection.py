"""The one Kafka connection object: every client's configuration, and no secret in sight."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.ingest.kafka import producer_config
from featurestore.kafka_connection import KafkaConnection

SECURED = {
    "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": "broker-1:9093,broker-2:9093",
    "FEATURESTORE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "FEATURESTORE_KAFKA__USERNAME": "ingest",
    "FEATURESTORE_KAFKA__PASSWORD": 'pa"ss\\word',
    "FEATURESTORE_KAFKA__CA_FILE": "/etc/featurestore/ca.pem",
}


def test_plaintext_clients_carry_only_the_bootstrap_servers() -> None:
    kafka = load_settings({"FEATURESTORE_KAFKA__PORT": "29092"}).kafka.connection
    assert kafka.admin() == {"bootstrap.servers": "127.0.0.1:29092"}
    assert kafka.consumer("g", **{"enable.auto.commit": False}) == {
        "bootstrap.servers": "127.0.0.1:29092",
        "group.id": "g",
        "enable.auto.commit": False,
    }
    assert kafka.spark_options() == {"kafka.bootstrap.servers": "127.0.0.1:29092"}


def test_sasl_ssl_reaches_every_kind_of_client() -> None:
    kafka = load_settings(SECURED).kafka.connection
    expected = {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ingest",
        "sasl.password": 'pa"ss\\word',
        "ssl.ca.location": "/etc/featurestore/ca.pem",
        "ssl.endpoint.identification.algorithm": "https",
    }
    for config in (kafka.admin(), kafka.producer(), kafka.consumer("g"), producer_config(kafka)):
        assert {k: config[k] for k in expected} == expected
    assert producer_config(kafka)["enable.idempotence"] is True


def test_spark_options_use_the_java_clients_names() -> None:
    options = load_settings(SECURED).kafka.connection.spark_options()
    assert options["kafka.bootstrap.servers"] == "broker-1:9093,broker-2:9093"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="ingest" password="pa\\"ss\\\\word";'
    )
    assert options["kafka.ssl.truststore.type"] == "PEM"
    assert options["kafka.ssl.truststore.location"] == "/etc/featurestore/ca.pem"


def test_the_password_is_never_shown() -> None:
    settings = load_settings(SECURED)
    kafka = settings.kafka.connection
    for text in (repr(kafka), str(kafka), repr(settings), kafka.describe()):
        assert 'pa"ss' not in text
    refusal = kafka.refusal(
        "SASL authentication error: Authentication failed (invalid credentials)"
    )
    assert refusal is not None
    assert "ingest" in str(refusal) and 'pa"ss' not in str(refusal)
    assert kafka.refusal("Connection refused") is None


def test_sasl_ssl_without_credentials_is_refused_naming_the_settings() -> None:
    with pytest.raises(ConfigurationError, match="FEATURESTORE_KAFKA__PASSWORD"):
        KafkaConnection("b:9093", security_protocol="SASL_SSL", username="u")
    assert KafkaConnection("b:9093", "SASL_SSL", username="u", password=SecretStr("p")).secured


def test_the_password_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-a-file\n")
    env = {k: v for k, v in SECURED.items() if not k.endswith("PASSWORD")}
    kafka = load_settings({**env, "FEATURESTORE_KAFKA__PASSWORD_FILE": str(secret)}).kafka
    assert kafka.password is not None and kafka.password.get_secret_value() == "from-a-file"
