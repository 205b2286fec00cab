"""The registry rides through Kafka going away: it keeps serving reads, says why it is not
serving, refuses writes with a retryable Confluent error, and resumes by itself.

Kafka here is a broker of the test's own (the stack's code, a temporary data folder, free ports),
frozen (SIGSTOP: it stops answering, as behind a network partition, the registry's connections
left hanging) and thawed under a running registry; the shared stack's Kafka is not touched.
A frozen broker is the harder case for a client: nothing refuses, requests only time out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.stack import Stack
from tests.integration.schema_registry.conftest import RegistryProcess
from tests.own_stack import own_stack
from tests.ports import free_port
from tests.ports import free_port_block

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.mostly_waits]

SCHEMA = json.dumps({"type": "record", "name": "T", "fields": [{"name": "a", "type": "long"}]})


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[tuple[Settings, Stack]]:
    base = free_port_block(2)
    env = {
        "FEATURESTORE_KAFKA__PORT": str(base),
        "FEATURESTORE_KAFKA__CONTROLLER_PORT": str(base + 1),
        "FEATURESTORE_KAFKA__HEAP": "256m",
    }
    with own_stack(tmp_path / "stack", env, ["kafka"]) as stack:
        yield stack.settings, stack


def register(registry: RegistryProcess, subject: str, schema: str = SCHEMA) -> requests.Response:
    return requests.post(
        f"{registry.url}/subjects/{subject}/versions",
        json={"schema": schema},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=40,
    )


def wait_health(registry: RegistryProcess, serving: bool, timeout_s: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        reply = requests.get(f"{registry.url}/health", timeout=5)
        body = reply.json()
        if (body["status"] == "SERVING") == serving:
            assert reply.status_code == (200 if serving else 503)
            return body
        time.sleep(0.2)
    raise AssertionError(f"health still {body} after {timeout_s}s")


def test_registry_rides_through_kafka_going_away(
    own_kafka: tuple[Settings, Stack], tmp_path: Path
) -> None:
    own, stack = own_kafka
    topic = f"_schemas-outage-{uuid.uuid4().hex[:8]}"
    registry = RegistryProcess(own, topic, free_port(), tmp_path / "registry.log")
    registry.start()
    try:
        wait_health(registry, serving=True, timeout_s=30)
        first = register(registry, "before-value")
        assert first.status_code == 200, first.text

        broker = stack.kafka.process.pid()
        assert broker is not None
        os.kill(broker, signal.SIGSTOP)
        try:
            refused = register(registry, "during-value", SCHEMA.replace('"T"', '"U"'))
            down = wait_health(registry, serving=False, timeout_s=20)
            assert "Kafka unreachable" in str(down["reason"]), down
            # Reads are served from what the instance has; writes are refused, retryably.
            subjects = requests.get(f"{registry.url}/subjects", timeout=5).json()
            assert subjects == ["before-value"]
        finally:
            os.kill(broker, signal.SIGCONT)
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["error_code"] in (50001, 50002, 50004), body
        assert "Kafka" in body["message"] or "leader" in body["message"], body
        assert "Error" not in body["message"].split()[0], body  # words, not a class name
        assert registry.process is not None and registry.process.poll() is None

        wait_health(registry, serving=True, timeout_s=60)
        deadline = time.monotonic() + 60
        while (
            after := register(registry, "after-value", SCHEMA.replace('"T"', '"V"'))
        ).ok is False:
            assert after.status_code == 503 and time.monotonic() < deadline, after.text
            time.sleep(0.5)
        subjects = requests.get(f"{registry.url}/subjects", timeout=5).json()
        # The refused write was not applied, unless Kafka took it just before going.
        landed = 1 if "during-value" in subjects else 0
        assert after.json()["id"] == first.json()["id"] + 1 + landed
        assert registry.process is not None and registry.process.poll() is None, "restarted"
    finally:
        registry.stop()


def test_a_configuration_kafka_refuses_stops_the_registry_naming_it(
    stack: Settings, tmp_path: Path
) -> None:
    """Not a passing outage: no wait can fix it, so the process exits and says why."""
    topic = f"_schemas-refused-{uuid.uuid4().hex[:8]}"
    registry = RegistryProcess(stack, topic, free_port(), tmp_path / "registry.log")
    env = {
        **os.environ,
        **settings_env(stack),
        "FEATURESTORE_KAFKA__BOOTSTRAP_SERVERS": stack.kafka.bootstrap,
        "FEATURESTORE_KAFKA__REPLICATION_FACTOR": "9",  # more than the stack's brokers
        "FEATURESTORE_SCHEMA_REGISTRY__PORT": str(registry.port),
        "FEATURESTORE_TOPICS__SCHEMAS": topic,
        "FEATURESTORE_METRICS__SCHEMA_REGISTRY_PORT": "0",
    }
    with registry.log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "featurestore.schema_registry"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert process.wait(60) == 1
    finally:
        if process.poll() is None:
            process.kill()
    output = registry.log_path.read_text()
    assert "schema registry stopped" in output and "REPLICATION_FACTOR" in output, output
