"""The processors' dead-letter and dropped-event series: bounded labels, there from the start."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from processors.decode import DEAD_LETTER_CODES
from processors.metrics import ProcessorMetrics
from processors.report import BatchReport
from tests.metric_points import metric_points


def _counts(reader: InMemoryMetricReader, name: str) -> dict[str, int]:
    return {str(p.attributes["reason"]): int(p.value) for _, p in metric_points(reader, name)}


def test_every_reason_is_a_series_at_zero_before_the_first_batch() -> None:
    # A series born with its first count is invisible to rate() and increase().
    reader = InMemoryMetricReader()
    ProcessorMetrics(MeterProvider(metric_readers=[reader]), "trades", "market.trades")
    assert _counts(reader, "featurestore.processor.dead_letters") == dict.fromkeys(
        DEAD_LETTER_CODES, 0
    )
    assert _counts(reader, "featurestore.processor.dropped_events") == {"late": 0, "duplicate": 0}


def test_dead_letters_are_counted_by_code() -> None:
    reader = InMemoryMetricReader()
    metrics = ProcessorMetrics(MeterProvider(metric_readers=[reader]), "trades", "market.trades")
    metrics.record(BatchReport(dead_letters_by_reason={"invalid": 2, "undecodable": 1}))
    assert _counts(reader, "featurestore.processor.dead_letters") == {
        **dict.fromkeys(DEAD_LETTER_CODES, 0),
        "invalid": 2,
        "undecodable": 1,
    }
