"""Two registry processes on one log: either takes writes, each reads the other's, and the
leader SIGKILLed under a stream of registrations hands over without an id given twice."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

import pytest
import requests
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tests.integration.schema_registry.conftest import RegistryProcess

pytestmark = [pytest.mark.integration, pytest.mark.mostly_waits]


def record(name: str) -> Schema:
    fields = [{"name": "value", "type": "double"}]
    return Schema(json.dumps({"type": "record", "name": name, "fields": fields}), "AVRO")


def health(process: RegistryProcess) -> dict[str, object]:
    reply = requests.get(f"{process.url}/health", headers=process.headers, timeout=5)
    body: dict[str, object] = reply.json()
    return body


def wait_for_leader(processes: list[RegistryProcess], timeout_s: float = 30.0) -> RegistryProcess:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            try:
                if health(process)["leader"]:
                    return process
            except requests.RequestException:
                pass
        time.sleep(0.2)
    raise AssertionError(f"no instance of {[p.url for p in processes]} leads")


Clients = Callable[..., SchemaRegistryClient]


@pytest.fixture
def client() -> Iterator[Clients]:
    """Makes fresh clients (no cache) given instances, in that order; closed after the test.

    Each tries every instance once with a short pause (the client's default is 3 tries with a
    backoff of up to 20 s on each URL before the next, seconds spent on a dead instance).
    """
    made: list[SchemaRegistryClient] = []

    def make(*processes: RegistryProcess) -> SchemaRegistryClient:
        urls = ",".join(p.url for p in processes)
        config = {"max.retries": 1, "retries.wait.ms": 50, "retries.max.wait.ms": 200}
        made.append(SchemaRegistryClient(processes[0].client_config(urls, **config)))
        return made[-1]

    yield make
    for each in made:
        each.close()


@dataclass
class Registrations:
    """Registers a new subject and schema after another, through whichever instance answers."""

    processes: list[RegistryProcess]
    client: Clients
    ids: dict[str, int] = field(default_factory=dict)
    done_at: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        registry = self.client(*self.processes)
        n = 0
        while not self.stop.is_set():
            name = f"S{n}"
            try:
                schema_id = registry.register_schema(f"stream-{n}-value", record(name))
            except (SchemaRegistryError, requests.RequestException) as exc:
                self.failures.append(f"{name}: {exc}")
                time.sleep(0.2)
                continue  # the same schema again: registering is idempotent
            self.ids[name] = schema_id
            self.done_at[name] = time.monotonic()
            n += 1


def test_two_instances_either_takes_writes_and_the_leader_killed_hands_over(
    start_registry: Callable[[str], RegistryProcess], client: Clients
) -> None:
    topic = f"_schemas-ha-{uuid.uuid4().hex[:8]}"
    first, second = start_registry(topic), start_registry(topic)
    leader = wait_for_leader([first, second])
    follower = second if leader is first else first
    assert health(follower)["leader_url"] == leader.url

    via_follower = client(follower).register_schema("a-value", record("A"))
    via_leader = client(leader).register_schema("b-value", record("B"))
    assert via_leader == via_follower + 1
    for process in (first, second):
        registry = client(process)
        assert registry.get_latest_version("a-value").schema_id == via_follower
        assert registry.get_latest_version("b-value").schema_id == via_leader
        assert "B" in str(registry.get_schema(via_leader).schema_str)

    # Whichever instance took a write, the other reads it at once: a follower answers a write
    # once it has read it back, and a read on a follower waits for the log's committed end.
    for n in range(5):
        for writer, reader in ((follower, leader), (leader, follower)):
            subject = f"ryw-{n}-{writer.port}-value"
            schema_id = client(writer).register_schema(subject, record(f"R{n}x{writer.port}"))
            assert client(reader).get_latest_version(subject).schema_id == schema_id
            assert client(writer).get_schema(schema_id).schema_str is not None

    compat = requests.put(
        f"{follower.url}/config/a-value",
        json={"compatibility": "FULL"},
        headers=follower.headers,
        timeout=15,
    )
    assert compat.status_code == 200
    level = requests.get(f"{leader.url}/config/a-value", headers=leader.headers, timeout=5).json()
    assert level == {"compatibilityLevel": "FULL"}

    # The leader SIGKILLed under a stream of registrations: the other leads within seconds.
    survivor = follower
    stream = Registrations([leader, survivor], client)
    feeder = threading.Thread(target=stream.run, daemon=True)
    feeder.start()
    try:
        while len(stream.ids) < 20:
            time.sleep(0.05)
        leader.stop(graceful=False)  # SIGKILL
        killed_at = time.monotonic()
        before = len(stream.ids)
        deadline = killed_at + 30
        while len(stream.ids) < before + 15 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stream.stop.set()
        feeder.join(30)
    after_kill = sorted(t for t in stream.done_at.values() if t > killed_at)
    assert len(after_kill) >= 15, (len(stream.ids), stream.failures[-3:])
    handover_s = after_kill[0] - killed_at
    assert handover_s < 15, handover_s
    assert health(survivor)["leader"] is True
    ids = list(stream.ids.values())
    assert len(set(ids)) == len(ids), "an id was given to two schemas"
    every = requests.get(f"{survivor.url}/schemas", headers=survivor.headers, timeout=10).json()
    id_of = {entry["schema"]: entry["id"] for entry in every}
    assert sorted(id_of.values()) == list(range(1, len(id_of) + 1)), "an id skipped or doubled"

    leader.start()  # the killed instance comes back, as a follower
    assert health(leader)["leader"] is False
    for process in (survivor, leader):
        registry = client(process)
        for name, schema_id in stream.ids.items():
            text = str(registry.get_schema(schema_id).schema_str)
            assert f'"{name}"' in text, (process.url, name)
    latest = client(leader).register_schema("after-restart-value", record("After"))
    assert latest == max(ids) + 1
    print(
        f"registrations: {len(ids)}, handover after SIGKILL of the leader: {handover_s:.1f} s, "
        f"failed attempts seen by the client: {len(stream.failures)}"
    )
