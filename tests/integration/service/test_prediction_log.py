"""The prediction log on the shared Kafka: complete through a registry outage and a full queue.

A fast-path call's rows are written column-wise (:mod:`featurestore.prediction_log.encoding`) and
general-path events through fastavro; both must arrive once each, one entity's records in the
order logged, with trace context in their headers when tracing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from featurestore.config import Settings
from featurestore.errors import BackendUnavailableError
from featurestore.events import InMemorySchemaStore
from featurestore.events import LoggedEvent
from featurestore.events import PredictionLog
from featurestore.events import replay_topic
from featurestore.events import to_micros
from featurestore.prediction_log import PredictionLogger
from featurestore.prediction_log.encoding import PredictionRows

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
FEATURES = ("bars_1m:close", "rolling_1m:vwap_5m")
SYMBOLS = [f"S{i:02d}" for i in range(20)]


class _RegistryAwayAtFirst(InMemorySchemaStore):
    """A schema store that is unreachable for its first ``failures`` registrations."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def register(self, subject: str, schema_text: str) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise BackendUnavailableError("schema registry unavailable (test)")
        return super().register(subject, schema_text)


@pytest.fixture
def topic(new_topic: Callable[..., str]) -> str:
    return new_topic("prediction-log", partitions=3)


def _rows(call: int) -> PredictionRows:
    n = len(SYMBOLS)
    values = np.arange(2 * n, dtype=float).reshape(n, 2) + call
    return PredictionRows(
        request_ids=[f"{call:016x}{i:016x}" for i in range(n)],
        join_keys=("symbol",),
        entity_values=[(s,) for s in SYMBOLS],
        values=values,
        valid=np.ones((n, 2), dtype=bool),
        scores=np.full(n, call / 100),
        feature_times=[to_micros(T0)] * n,
        request_time=to_micros(T0) + call,
        response_time=to_micros(T0) + call + 1,
    )


def test_every_row_logged_once_in_order_through_an_outage_and_a_full_queue(
    stack: Settings, topic: str
) -> None:
    store = _RegistryAwayAtFirst(failures=1)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    calls = 15  # 300 records through a librdkafka queue of 25

    async def main() -> PredictionLogger:
        log = PredictionLogger(
            stack.kafka.connection,
            topic,
            store,
            tracer=provider.get_tracer("test"),
            queue_records=25,
        )
        tracer = provider.get_tracer("test")
        for call in range(calls):
            with tracer.start_as_current_span(f"Predict {call}"):
                log.log_rows("m", "1", FEATURES, _rows(call))
        event = PredictionLog("general", "m", "1", {"symbol": "S00"}, 0.5, T0, T0, {}, None)
        log.log([event])
        assert len(log) == calls * len(SYMBOLS) + 1  # the registry was away: all waiting
        assert await log.flush(30) == 0
        await log.close()
        return log

    log = asyncio.run(main())
    assert (log.sent, log.failed, log.dropped) == (calls * len(SYMBOLS) + 1, 0, 0)
    logged = [
        r
        for r in replay_topic(stack.kafka.connection, store, topic)
        if isinstance(r, LoggedEvent) and isinstance(r.event, PredictionLog)
    ]
    ids = [r.event.request_id for r in logged]  # type: ignore[union-attr]
    assert len(ids) == len(set(ids)) == calls * len(SYMBOLS) + 1
    for symbol in SYMBOLS:
        mine = [
            r
            for r in logged
            if r.key == f"symbol={symbol}".encode() and r.event.request_id != "general"  # type: ignore[union-attr]
        ]
        scores = [r.event.prediction for r in mine]  # type: ignore[union-attr]
        assert scores == [call / 100 for call in range(calls)]
        assert mine[-1].event.features == {  # type: ignore[union-attr]
            "bars_1m:close": 2 * SYMBOLS.index(symbol) + calls - 1.0,
            "rolling_1m:vwap_5m": 2 * SYMBOLS.index(symbol) + calls + 0.0,
        }
    sends = [s for s in spans.get_finished_spans() if s.name == f"send {topic}"]
    calls_spans = {
        s.context.span_id for s in spans.get_finished_spans() if s.name.startswith("Predict ")
    }
    parents = [s.parent.span_id for s in sends if s.parent is not None]
    assert len(sends) == calls + 1 and sorted(parents) == sorted(calls_spans)
