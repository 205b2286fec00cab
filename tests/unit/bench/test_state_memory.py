"""The state-memory bench: the processor's step over event time, sampled, in a few seconds."""

from __future__ import annotations

from bench.bench_state_memory import markdown
from bench.bench_state_memory import measure


def test_a_short_run_samples_blocks_beside_the_state_then_traces_its_end() -> None:
    report = measure(minutes=4, symbols=5, rate=5.0, batch_s=10.0, sample_min=2, trace_min=2)
    assert [s.minute for s in report.samples] == [0, 2, 4, 6]
    assert report.samples[0].held.tiles == 0
    assert report.samples[-1].held.tiles > 0 and report.samples[-1].held.open_events > 0
    assert report.reach_min > 120  # ohlcv_1h's
    assert report.traced_from == 4 and report.trades > 0
    text = markdown(report)
    assert "| 4 (traced from here) | " in text and "| KiB | blocks | where |" in text
