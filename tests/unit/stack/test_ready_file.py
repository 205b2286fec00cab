"""A service's ready file: ready, NOT_SERVING with the reasons while it waits, ready again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from featurestore.resilience import Health
from featurestore.resilience import Outage
from featurestore.stack.base import health_to_ready_file
from featurestore.stack.base import not_serving_of
from featurestore.stack.base import ready_for


def test_the_ready_file_follows_the_health_of_the_process(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    me = os.getpid()
    assert not ready_for(path, me) and not_serving_of(path, me) is None

    health = Health(health_to_ready_file(path, topic="trades"))
    health_to_ready_file(path, topic="trades")(health.reasons())
    assert ready_for(path, me)
    assert json.loads(path.read_text()) == {"pid": me, "topic": "trades"}

    health.down(Outage("redis", "online store (Redis) unavailable while writing"))
    assert not ready_for(path, me)
    assert not_serving_of(path, me) == {"redis": "online store (Redis) unavailable while writing"}

    health.up("redis")
    assert ready_for(path, me) and not_serving_of(path, me) is None
    # Another process's file says nothing about this one.
    assert not ready_for(path, me + 1) and not_serving_of(path, me + 1) is None
    assert not list(tmp_path.glob(".*.tmp")), "written through a temporary file, renamed"
