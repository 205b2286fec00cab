"""Security settings: what the secured stack implies, and where each client takes them from."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from featurestore.config import load_settings
from featurestore.config import settings_env
from featurestore.definitions.repo_config import online_store_config
from featurestore.definitions.repo_config import repo_config_dict
from featurestore.errors import ConfigurationError
from featurestore.online.pipelined import RedisAccess
from featurestore.stack.security import local_security

SECRETS = {
    "FEATURESTORE_KAFKA__PASSWORD": "k-secret",
    "FEATURESTORE_REDIS__PASSWORD": "r-secret",
    "FEATURESTORE_POSTGRES__PASSWORD": "p secret'quoted",
}


def test_open_by_default() -> None:
    settings = load_settings({})
    assert not settings.security.enabled
    assert not settings.kafka.connection.secured
    assert settings.redis.client_kwargs() == {}
    assert settings.redis.ssl_context() is None
    assert conninfo_to_dict(settings.postgres.dsn)["sslmode"] == "prefer"
    assert repo_config_dict(settings, "p")["offline_store"]["sslmode"] == "prefer"


def test_security_enabled_points_every_client_at_the_secured_stack(tmp_path: Path) -> None:
    settings = load_settings(
        {"FEATURESTORE_SECURITY__ENABLED": "true", "FEATURESTORE_DATA_DIR": str(tmp_path)}
    )
    ca = tmp_path.resolve() / "certs" / "ca.pem"
    kafka = settings.kafka.connection
    assert kafka.security_protocol == "SASL_SSL" and kafka.ca_file == ca
    assert settings.redis.tls and settings.redis.ca_file == ca
    assert settings.redis.url.startswith("rediss://")
    dsn = conninfo_to_dict(settings.postgres.dsn)
    assert dsn["sslmode"] == "verify-full" and dsn["sslrootcert"] == str(ca)
    # A child process rebuilds the same settings from the environment it is given.
    assert load_settings(settings_env(settings)) == settings


def test_explicit_values_win_over_the_secured_defaults(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SECURITY__ENABLED": "true",
            "FEATURESTORE_DATA_DIR": str(tmp_path),  # its credentials file, not the checkout's
            "FEATURESTORE_KAFKA__USERNAME": "ingest",
            "FEATURESTORE_POSTGRES__SSLMODE": "require",
            "FEATURESTORE_REDIS__CA_FILE": "/etc/ca.pem",
        }
    )
    assert settings.kafka.username == "ingest"
    assert settings.postgres.sslmode == "require"
    assert settings.redis.ca_file == Path("/etc/ca.pem")


def test_every_client_carries_the_credentials_and_tls(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SECURITY__ENABLED": "true",
            "FEATURESTORE_DATA_DIR": str(tmp_path),
            **SECRETS,
        }
    )
    ca = str(tmp_path.resolve() / "certs" / "ca.pem")
    assert settings.redis.client_kwargs() == {
        "username": "featurestore",
        "password": "r-secret",
        "ssl": True,
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": ca,
    }
    access = RedisAccess(username="featurestore", password="r-secret")
    assert "r-secret" not in repr(access)
    # The libpq string quotes a password with a space and a quote.
    assert conninfo_to_dict(settings.postgres.dsn)["password"] == "p secret'quoted"
    feast = repo_config_dict(settings, "p")
    assert feast["offline_store"]["sslmode"] == "verify-full"
    assert feast["offline_store"]["sslrootcert_path"] == ca
    assert "sslmode=verify-full" in feast["registry"]["path"]
    assert feast["online_store"]["connection_string"] == (
        f"127.0.0.1:16379,db=0,password=r-secret,username=featurestore,ssl=true,"
        f"ssl_cert_reqs=required,ssl_ca_certs={ca}"
    )


def test_secrets_are_not_shown(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SECURITY__ENABLED": "true",
            "FEATURESTORE_DATA_DIR": str(tmp_path),
            **SECRETS,
        }
    )
    shown = repr(settings) + str(settings.kafka.connection) + settings.redis.describe()
    for secret in ("k-secret", "r-secret", "p secret"):
        assert secret not in shown


def test_a_secret_file_that_cannot_be_read_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigurationError, match="FEATURESTORE_REDIS__PASSWORD_FILE"):
        load_settings({"FEATURESTORE_REDIS__PASSWORD_FILE": str(missing)})
    secret = tmp_path / "secret"
    secret.write_text("x\n")
    with pytest.raises(ConfigurationError, match="both set"):
        load_settings(
            {"FEATURESTORE_REDIS__PASSWORD_FILE": str(secret), "FEATURESTORE_REDIS__PASSWORD": "y"}
        )
    # A path setting that ends in _FILE is not a secret file.
    assert load_settings({"FEATURESTORE_KAFKA__CA_FILE": "/ca.pem"}).kafka.ca_file == Path(
        "/ca.pem"
    )


def test_the_local_stack_secures_only_what_it_can(tmp_path: Path) -> None:
    secured = {"FEATURESTORE_SECURITY__ENABLED": "true", "FEATURESTORE_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigurationError, match="FEATURESTORE_REDIS__CLUSTER"):
        local_security(load_settings({**secured, "FEATURESTORE_REDIS__CLUSTER": "true"}))
    with pytest.raises(ConfigurationError, match="plaintext clients"):
        local_security(load_settings({**secured, "FEATURESTORE_REDIS__TLS": "false"}))
    certs = local_security(load_settings(secured))
    assert certs is not None
    assert certs.ca.exists() and certs.key.stat().st_mode & 0o077 == 0
    assert local_security(load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})) is None


def test_a_redis_password_with_a_comma_cannot_reach_feast() -> None:
    settings = load_settings({"FEATURESTORE_REDIS__PASSWORD": "a,b"})
    with pytest.raises(ConfigurationError, match="comma"):
        online_store_config(settings.redis)
