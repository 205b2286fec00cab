"""Every PostgreSQL connection made from the settings asks for JIT off (libpq ``options``)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from featurestore.config import PostgresSettings


def test_the_connection_parameters_turn_jit_off() -> None:
    pg = PostgresSettings(host="db.example", port=5433)
    assert conninfo_to_dict(pg.dsn)["options"] == "-c jit=off"
    assert pg.connect_kwargs()["options"] == "-c jit=off"
