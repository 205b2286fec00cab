"""The model-side metric families in Prometheus: Predict, the scorer, drift, ingest dead letters.

``tests/integration/stack/test_prometheus.py`` covers the pipeline's families; the ones here need
trained models, so they run on the package's world (its project, tables and MLflow models). A
Prometheus of the module's own (the stack's code, a free port, 1 s scrapes) scrapes, through
their target files, a gRPC server answering Predict, the scorer following the world's rows, the
monitor measuring the anomaly model's drift on a 2-second schedule, and a file replay whose bad
rows are dead-lettered; every family must have samples from those processes (``pid`` label).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from featurestore.config import Settings
from featurestore.stack.base import port_open
from featurestore.stack.process import wait_until
from featurestore.topics import TopicSpec
from featurestore.topics import ensure_topics
from tests.integration.children import Children
from tests.integration.children import child_env
from tests.integration.children import own_prometheus
from tests.integration.children import prometheus_query
from tests.integration.models.conftest import ModelsWorld
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]


@dataclass
class Scraped:
    settings: Settings
    processes: Children
    grpc_target: str
    direction_model: str
    symbols: list[str]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return prometheus_query(self.settings.prometheus.url, expr)


def _bad_trades(path: Path) -> Path:
    """Trades a second apart (replayed in real time: ~15 s, several scrapes), two invalid."""
    start = datetime.now(UTC).replace(microsecond=0)
    rows = ["symbol,price,size,event_time"]
    trades = [("AAA", "10.5"), ("AAA", "-3"), ("BBB", "20"), ("bad symbol!", "5")]
    trades += [("AAA", f"{11 + i / 10}") for i in range(12)]
    for i, (symbol, price) in enumerate(trades):
        rows.append(f"{symbol},{price},100,{(start + timedelta(seconds=i)).isoformat()}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def scraped(world: ModelsWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    stack = world.settings
    run = uuid.uuid4().hex[:8]
    anomalies_topic = f"model-metrics-anomalies-{run}"
    trades_topic = f"model-metrics-trades-{run}"
    admin = AdminClient(stack.kafka.connection.admin())
    ensure_topics(admin, [TopicSpec(anomalies_topic, 1)])
    logs = tmp_path_factory.mktemp("model-metrics")
    anomaly = world.reports["anomaly"].logged.ref.name
    project = world.definitions.project
    grpc_port = free_port()
    # The world's rows were created at their event times (a demo market in the past).
    oldest = world.demo.trades["event_time"].min().to_pydatetime()
    since = int((datetime.now(UTC) - oldest).total_seconds() // 60) + 60
    try:
        with own_prometheus(stack, f"models-{run}", scrape_interval_s=1.0) as settings:
            env = child_env(
                settings,
                FEATURESTORE_METRICS__DRIFT_MODELS=anomaly,
                FEATURESTORE_METRICS__DRIFT_INTERVAL_S="2",
                FEATURESTORE_METRICS__DRIFT_WINDOW_MINUTES="60",
                FEATURESTORE_METRICS__LAG_PROCESSORS="",
                FEATURESTORE_TOPICS__TRADES=trades_topic,
            )
            processes = Children(env, logs)
            try:
                processes.cli("grpc", "serve", "--port", str(grpc_port), "--project", project)
                processes.cli(
                    "scorer", "score", "--follow", "--model", anomaly, "--project", project,
                    "--topic", anomalies_topic, "--since-minutes", str(since),
                    "--poll-seconds", "1",
                )  # fmt: skip
                processes.cli("monitor", "monitor", "--metrics-port", "0", "--project", project)
                serving = wait_until(lambda: port_open("127.0.0.1", grpc_port), 120)
                assert serving, processes.log_tail()
                yield Scraped(
                    settings, processes, f"127.0.0.1:{grpc_port}",
                    world.reports["direction"].logged.ref.name,
                    sorted(world.demo.trades["symbol"].unique().tolist())[:3],
                )  # fmt: skip
            finally:
                processes.stop_all()
    finally:
        for future in admin.delete_topics([anomalies_topic, trades_topic]).values():
            with contextlib.suppress(Exception):  # never created if the test failed early
                future.result()


FAMILIES: dict[str, str] = {
    # family (a sample's name) -> child whose pid labels it
    "featurestore_predict_duration_seconds_count": "grpc",
    "featurestore_scorer_rows_scored_total": "scorer",
    "featurestore_scorer_anomalies_total": "scorer",
    "featurestore_scorer_model_version": "scorer",
    "featurestore_drift_psi": "monitor",
    "featurestore_ingest_records_dead_lettered_total": "ingest",
}


def test_prometheus_has_the_model_families_from_this_run(scraped: Scraped, tmp_path: Path) -> None:
    from featurestore_client import DeadlineExceededError
    from featurestore_client import FeatureStoreClient
    from featurestore_client import UnavailableError

    settings = scraped.settings
    ensure_topics(
        AdminClient(settings.kafka.connection.admin()),
        [TopicSpec(scraped.processes.env["FEATURESTORE_TOPICS__TRADES"], 1)],
    )
    scraped.processes.cli("ingest", "ingest", "files", str(_bad_trades(tmp_path / "t.csv")),
                            "--format", "csv", "--speed", "1")  # fmt: skip
    missing = list(FAMILIES)

    def all_found() -> bool:
        # The first call loads the model from MLflow: slow on a busy machine, retried here.
        with (
            FeatureStoreClient(scraped.grpc_target, timeout_s=60) as client,
            contextlib.suppress(DeadlineExceededError, UnavailableError),
        ):
            client.predict(scraped.direction_model, entities={"symbol": scraped.symbols})
        for name in list(missing):
            # The replay's samples go stale once it has ended: the last ones of 10 minutes.
            selector = f'{name}{{pid="{scraped.processes.pid(FAMILIES[name])}"}}'
            if scraped.query(f"last_over_time({selector}[10m])"):
                missing.remove(name)
        return not missing

    found = wait_until(all_found, 300, 1.0)
    assert found, f"no samples of {missing}\n{scraped.processes.log_tail()}"
    pid = scraped.processes.pid
    predicted = scraped.query(
        f'featurestore_predict_duration_seconds_count{{pid="{pid("grpc")}",'
        f' model="{scraped.direction_model}"}}'
    )
    assert predicted and float(predicted[0]["value"][1]) > 0
    assert {r["metric"]["version"] for r in predicted} == {"1"}

    def scored_rows() -> float:
        scored = scraped.query(f'featurestore_scorer_rows_scored_total{{pid="{pid("scorer")}"}}')
        return float(scored[0]["value"][1]) if scored else 0.0

    # The family is there, at 0, from the scorer's start; its first pass (the model loaded from
    # MLflow, then every row since --since-minutes) can end later on a busy machine.
    scored = wait_until(lambda: scored_rows() > 0, 300, 1.0)
    assert scored, f"the scorer scored no row\n{scraped.processes.log_tail()}"
    inputs = scraped.query(f'featurestore_drift_psi{{pid="{pid("monitor")}"}}')
    assert len({r["metric"]["input"] for r in inputs}) > 3
    reasons = scraped.query(
        f'last_over_time(featurestore_ingest_records_dead_lettered_total{{pid="{pid("ingest")}"}}'
        "[10m])"
    )
    assert {r["metric"]["reason"]: float(r["value"][1]) for r in reasons} == {
        "bad_symbol": 1, "non_positive_price": 1
    }, reasons  # fmt: skip
