"""Schema registry lookup latency, against the stack's registry over loopback HTTP.

Measures what producers and consumers pay on a cache miss: ``GET /schemas/ids/{id}`` (a
deserializer meeting a new id), ``POST /subjects/{s}`` (lookup, a serializer with
``auto.register.schemas=false``) and ``POST /subjects/{s}/versions`` of an already registered
schema (a serializer's first record). The floor is ``GET /``, a route that does nothing: the
difference is what the registry itself costs. Bounded: at most ``REQUESTS`` requests and
``PHASE_SECONDS`` per operation.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import requests

from bench.stats import markdown_table
from bench.stats import percentiles_ms
from featurestore.config import Settings

REQUESTS = 500
NEW_SCHEMAS = 100
WARMUP = 20
PHASE_SECONDS = 4.0
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def _measure(
    call: Callable[[], requests.Response], *, count: int = REQUESTS, warmup: int = WARMUP
) -> list[float]:
    for _ in range(warmup):
        call().raise_for_status()
    samples: list[float] = []
    deadline = time.monotonic() + PHASE_SECONDS
    while len(samples) < count and time.monotonic() < deadline:
        began = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - began)
        response.raise_for_status()
    return samples


def run(settings: Settings) -> str:
    url = settings.schema_registry.url
    subject = f"bench-{uuid.uuid4().hex[:8]}-value"
    schema = {
        "type": "record",
        "name": "BenchTrade",
        "namespace": f"bench.r{uuid.uuid4().hex[:8]}",
        "fields": [
            {"name": "symbol", "type": "string"},
            {"name": "price", "type": "double"},
            {"name": "size", "type": "long"},
            {"name": "venue", "type": ["null", "string"], "default": None},
        ],
    }
    body = json.dumps({"schema": json.dumps(schema)})
    headers = {"Content-Type": CONTENT_TYPE}
    session = requests.Session()
    session.headers.update(settings.schema_registry.auth_header)
    try:
        registered = session.post(f"{url}/subjects/{subject}/versions", data=body, headers=headers)
        registered.raise_for_status()
        schema_id = registered.json()["id"]
        evolved = iter(range(1, 10**6))

        def register_new() -> requests.Response:
            extra = {"name": f"f{next(evolved)}", "type": "int", "default": 0}
            new = {**schema, "fields": [*schema["fields"], extra]}
            payload = json.dumps({"schema": json.dumps(new)})
            return session.post(f"{url}/subjects/{subject}/versions", data=payload, headers=headers)

        def post(path: str) -> Callable[[], requests.Response]:
            return lambda: session.post(f"{url}{path}", data=body, headers=headers)

        phases: list[tuple[str, Callable[[], requests.Response], int, int]] = [
            ("floor: `GET /` (no work)", lambda: session.get(f"{url}/"), REQUESTS, WARMUP),
            (
                "`GET /schemas/ids/{id}`",
                lambda: session.get(f"{url}/schemas/ids/{schema_id}"),
                REQUESTS,
                WARMUP,
            ),
            ("`POST /subjects/{s}` (lookup)", post(f"/subjects/{subject}"), REQUESTS, WARMUP),
            (
                "`POST /subjects/{s}/versions` (already registered)",
                post(f"/subjects/{subject}/versions"),
                REQUESTS,
                WARMUP,
            ),
            ("`POST /subjects/{s}/versions` (new schema)", register_new, NEW_SCHEMAS, 0),
        ]
        rows = []
        for name, call, count, warmup in phases:
            samples = _measure(call, count=count, warmup=warmup)
            stats = percentiles_ms(samples)
            rate = len(samples) / sum(samples)
            rows.append([name, len(samples), stats["p50"], stats["p90"], stats["p99"], rate])
    finally:
        session.delete(f"{url}/subjects/{subject}")
        session.delete(f"{url}/subjects/{subject}?permanent=true")
        session.close()
    table = markdown_table(
        ["operation", "requests", "p50 ms", "p90 ms", "p99 ms", "req/s (serial)"], rows
    )
    return (
        f"Registry at {url}, one client, keep-alive, serial requests, no client cache "
        f"(every request reaches the server); a {len(json.dumps(schema))}-byte schema.\n\n"
        f"{table}\n\n"
        "Lookup and re-register parse and normalize the posted schema on every call; "
        "get-by-id is a dictionary read. Registering an existing schema writes nothing to "
        "Kafka, so it costs about what a lookup costs; a new schema adds the compatibility "
        "check and a write to the compacted topic, acknowledged (acks=all) before the reply."
    )
