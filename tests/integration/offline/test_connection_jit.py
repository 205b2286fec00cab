"""Connections made from the settings run with PostgreSQL's JIT compiler off."""

from __future__ import annotations

import psycopg
import pytest

from featurestore.config import Settings

pytestmark = pytest.mark.integration


def test_a_connection_from_the_settings_has_jit_off(stack: Settings) -> None:
    with psycopg.connect(stack.postgres.dsn) as conn:
        by_dsn = conn.execute("SHOW jit").fetchone()
    with psycopg.connect(**stack.postgres.connect_kwargs()) as conn:
        by_keywords = conn.execute("SHOW jit").fetchone()
    assert by_dsn == by_keywords == ("off",)
