"""The options of ``PostgresSettings.libpq_options`` reach the sockets of live connections."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from featurestore.config import Settings

pytestmark = pytest.mark.integration


def test_a_live_connection_probes_a_silent_server(stack: Settings) -> None:
    with psycopg.connect(stack.postgres.dsn) as conn:
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            tcp = {
                "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                "probes": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            }
        finally:
            sock.close()
        conn.execute("SELECT 1")  # the connection itself is untouched
    assert tcp == {"idle": stack.postgres.keepalive_idle_s, "interval": 10, "probes": 3}
