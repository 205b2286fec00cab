"""Prometheus of the stack against live processes of this run.

The module starts its own Prometheus through the stack's code (a second instance beside the
stack's, on a free port, with rule windows of seconds) and, as child processes with their
metrics on free ports (found through the target files), a synthetic feed, a processor, the
monitor, a gRPC server and a schema registry, all on names unique to the run. Then it asks
Prometheus' HTTP API for every metric family, from those processes (``pid`` target label), and
stops the processor to see the lag alert fire, then starts it again to see it clear.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import requests
from confluent_kafka import Producer

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.stack.base import port_open
from featurestore.stack.process import wait_until
from featurestore.stack.prometheus import PrometheusServer
from tests.e2e.processors_support import clean_up
from tests.integration.children import Children
from tests.integration.children import child_env
from tests.integration.children import own_prometheus
from tests.integration.children import prometheus_query
from tests.live import topic_has_schema
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass
class Run:
    settings: Settings
    """The stack's settings with this module's Prometheus."""
    run: str
    topic: str
    processor: str
    definitions: Definitions
    children: Children
    registry_url: str = ""
    grpc_target: str = ""

    def start_processor(self) -> None:
        self.children.cli(
            "processor", "processors", "run", "--name", self.processor,
            "--project", self.definitions.project, "--topic", self.topic, "--metrics-port", "0",
        )  # fmt: skip

    def query(self, expr: str) -> list[dict[str, Any]]:
        return prometheus_query(self.settings.prometheus.url, expr)

    def firing(self, alert: str, **labels: str) -> bool:
        reply = requests.get(f"{self.settings.prometheus.url}/api/v1/alerts", timeout=10)
        return any(
            a["labels"].get("alertname") == alert
            and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in reply.json()["data"]["alerts"]
        )


@pytest.fixture(scope="module")
def live(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    run = uuid.uuid4().hex[:8]
    topic = f"prom-trades-{run}"
    processor = f"prom-{run}"
    definitions = market_definitions(
        f"prom_{run}", table_prefix=f"prom_{run}_", source_topic=topic, ttl=timedelta(0)
    )
    logs = tmp_path_factory.mktemp("prometheus-run")
    try:
        with own_prometheus(
            stack, run, scrape_interval_s=1.0, alert_for_s=3.0, rate_window_s=10.0,
            lag_alert_s=5.0,
        ) as settings:  # fmt: skip
            env = child_env(
                settings,
                FEATURESTORE_METRICS__LAG_PROCESSORS=processor,
                FEATURESTORE_METRICS__LAG_INTERVAL_S="1",
                FEATURESTORE_METRICS__DRIFT_INTERVAL_S="3600",
            )
            r = Run(settings, run, topic, processor, definitions, Children(env, logs))
            try:
                r.children.cli(
                    "feed", "ingest", "synthetic", "--topic", topic,
                    "--symbols", "5", "--rate", "50",
                )  # fmt: skip
                wait_until(lambda: topic_has_schema(settings, topic), 60)
                apply_definitions(settings, definitions)
                r.start_processor()
                r.children.cli("monitor", "monitor", "--metrics-port", "0")
                r.children.start("registry", "featurestore.schema_registry", env={
                    "FEATURESTORE_SCHEMA_REGISTRY__PORT": str(registry_port := free_port())
                })  # fmt: skip
                grpc_port = free_port()
                r.children.cli(
                    "grpc", "serve", "--port", str(grpc_port),
                    "--project", definitions.project,
                )  # fmt: skip
                r.registry_url = f"http://127.0.0.1:{registry_port}"
                r.grpc_target = f"127.0.0.1:{grpc_port}"
                serving = wait_until(
                    lambda: (
                        port_open("127.0.0.1", grpc_port) and port_open("127.0.0.1", registry_port)
                    ),
                    120,
                )
                assert serving, r.children.log_tail()
                yield r
            finally:
                r.children.stop_all()
    finally:
        with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM processor_view_state WHERE processor = %s", (processor,))
        clean_up(stack, [definitions], f"prom-{run}*", [topic])


def _traffic(r: Run) -> None:
    """Calls that make the families appear: RPCs, registry requests, a refusal, junk events."""
    from featurestore_client import FeatureStoreClient

    with FeatureStoreClient(r.grpc_target) as client:
        for _ in range(20):
            client.get_online_features(["bars_1m:close"], entities={"symbol": ["SYM0"]})
    url = r.registry_url
    subject = f"prom-{r.run}-value"
    record = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "int"}]}
    auth = r.settings.schema_registry.auth_header
    requests.post(f"{url}/subjects/{subject}/versions", json={"schema": json.dumps(record)},
                  headers=auth, timeout=10).raise_for_status()  # fmt: skip
    record["fields"] = [{"name": "b", "type": "string"}]
    refused = requests.post(
        f"{url}/subjects/{subject}/versions",
        json={"schema": json.dumps(record)},
        headers=auth,
        timeout=10,
    )
    assert refused.status_code == 409, refused.text
    producer = Producer(r.settings.kafka.connection.producer())
    producer.produce(r.topic, b"not avro", key=b"SYM0")
    producer.flush(10)


FAMILIES: dict[str, tuple[str, str]] = {
    # family (a sample's name) -> (child whose pid labels it, extra selector)
    "featurestore_grpc_server_handling_seconds_count": ("grpc", ""),
    "featurestore_grpc_server_in_flight_requests": ("grpc", ""),
    "featurestore_online_row_cache_hit_ratio": ("grpc", ""),
    "featurestore_online_response_memo_hit_ratio": ("grpc", ""),
    "featurestore_processor_events_total": ("processor", ""),
    "featurestore_processor_rows_total": ("processor", ""),
    "featurestore_processor_lag_records": ("processor", ""),
    "featurestore_processor_freshness_seconds_count": ("processor", ""),
    "featurestore_processor_kafka_freshness_seconds_count": ("processor", ""),
    "featurestore_processor_stage_duration_seconds_count": ("processor", ""),
    "featurestore_processor_dead_letters_total": ("processor", ""),
    "featurestore_processor_state_bytes": ("processor", ""),
    "featurestore_consumer_lag_records": ("monitor", ""),
    "featurestore_consumer_lag_seconds": ("monitor", ""),
    "featurestore_ingest_records_read_total": ("feed", ""),
    "featurestore_ingest_records_sent_total": ("feed", ""),
    "featurestore_ingest_produce_latency_seconds_count": ("feed", ""),
    "featurestore_schema_registry_requests_total": ("registry", ""),
    "featurestore_schema_registry_compatibility_refusals_total": ("registry", ""),
}


def test_prometheus_has_every_metric_family_from_this_run(live: Run) -> None:
    missing: list[str] = list(FAMILIES)

    def all_found() -> bool:
        _traffic(live)
        for name in list(missing):
            child, extra = FAMILIES[name]
            if live.query(f'{name}{{pid="{live.children.pid(child)}"{extra}}}'):
                missing.remove(name)
        return not missing

    assert wait_until(all_found, 240, 3.0), f"no samples of {missing}\n{live.children.log_tail()}"
    # The processor's own samples carry its name, and its events are this run's feed.
    events = live.query(f'featurestore_processor_events_total{{processor="{live.processor}"}}')
    assert events and float(events[0]["value"][1]) > 0
    reasons = live.query(
        f'featurestore_processor_dead_letters_total{{pid="{live.children.pid("processor")}"}}'
    )
    assert {r["metric"]["reason"] for r in reasons}


def test_a_stopped_processor_fires_the_lag_alert_and_a_restart_clears_it(live: Run) -> None:
    labels = {"processor": live.processor, "topic": live.topic}
    caught_up = f'featurestore_consumer_lag_seconds{{processor="{live.processor}"}} < 5'
    assert wait_until(lambda: bool(live.query(caught_up)), 120, 1.0), live.children.log_tail()
    assert not live.firing("ConsumerLagHigh", **labels)
    stopped = time.monotonic()
    live.children.stop("processor")
    # lag passes 5 s after ~5 s of feed, then the rule holds 3 s: firing well within 40 s.
    assert wait_until(lambda: live.firing("ConsumerLagHigh", **labels), 40, 1.0), (
        live.children.log_tail()
    )
    fired_after = time.monotonic() - stopped
    live.start_processor()
    assert wait_until(lambda: not live.firing("ConsumerLagHigh", **labels), 150, 1.0), (
        live.children.log_tail()
    )
    assert fired_after >= 5.0  # never before the lag could pass the threshold


def _lag_rule(settings: Settings) -> str:
    reply = requests.get(f"{settings.prometheus.url}/api/v1/rules", timeout=10)
    reply.raise_for_status()
    rules = [r for g in reply.json()["data"]["groups"] for r in g["rules"]]
    return next(str(r["query"]) for r in rules if r["name"] == "ConsumerLagHigh")


def test_a_start_that_finds_prometheus_running_reloads_changed_rules(stack: Settings) -> None:
    """What ``stack up`` does with a running Prometheus: the rules of this code and settings."""
    instance = "reload"
    with own_prometheus(stack, instance, lag_alert_s=5.0) as settings:
        assert _lag_rule(settings).endswith("> 5")
        changed = settings.model_copy(
            update={"prometheus": settings.prometheus.model_copy(update={"lag_alert_s": 7.0})}
        )
        server = PrometheusServer(changed, instance=instance)
        pid = server.process.pid()
        assert pid is not None
        server.refresh(pid)
        assert wait_until(lambda: _lag_rule(settings).endswith("> 7"), 30), _lag_rule(settings)
        assert server.process.pid() == pid  # reloaded, not restarted
