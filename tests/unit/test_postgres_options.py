"""Every PostgreSQL connection's options: a timeout on connecting, TCP keepalives.

Without them a connection to a server that accepts and never answers, or whose host vanished
without a reset, blocks its caller (a processor's commit, an export) for hours.
"""

from __future__ import annotations

import socket
import threading

import psycopg
from psycopg.conninfo import conninfo_to_dict

from featurestore.config import PostgresSettings
from featurestore.config import load_settings
from featurestore.definitions.repo_config import registry_url
from featurestore.error_maps import postgres_error
from featurestore.errors import BackendUnavailableError
from featurestore.resilience import outage_of


def test_every_connection_carries_the_timeout_and_keepalives() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_POSTGRES__CONNECT_TIMEOUT_S": "7",
            "FEATURESTORE_POSTGRES__KEEPALIVE_IDLE_S": "20",
        }
    )
    pg = settings.postgres
    want = {"connect_timeout": "7", "keepalives": "1", "keepalives_idle": "20",
            "keepalives_interval": "10", "keepalives_count": "3"}  # fmt: skip
    dsn = conninfo_to_dict(pg.dsn)
    assert {k: dsn[k] for k in want} == want
    assert {k: str(v) for k, v in pg.connect_kwargs().items() if k in want} == want
    url = registry_url(settings)
    assert all(f"{k}={v}" in url for k, v in want.items()), url


def test_a_server_that_never_answers_fails_the_connect_as_an_outage() -> None:
    """A listener whose kernel completes the handshake but that never speaks PostgreSQL."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:
        pg = PostgresSettings(host="127.0.0.1", port=silent.getsockname()[1], connect_timeout_s=2)
        seen: list[psycopg.OperationalError] = []

        def connect() -> None:
            try:
                psycopg.connect(pg.dsn).close()
            except psycopg.OperationalError as exc:
                seen.append(exc)

        attempt = threading.Thread(target=connect, daemon=True)
        attempt.start()
        attempt.join(60.0)  # without connect_timeout libpq waits for ever
        assert not attempt.is_alive(), "the connect attempt still waits"
    assert len(seen) == 1
    error = postgres_error(seen[0], "connecting")
    assert isinstance(error, BackendUnavailableError)
    assert outage_of(error) is not None, "retried as an outage, not raised"
    assert "timeout" in str(error), str(error)
