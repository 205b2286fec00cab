"""The batch recorder: totals over every batch, reports of the latest ones only."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors import recorder as recorder_module
from processors.recorder import BatchRecorder
from processors.status import read_status
from processors.summary import PartitionSummary


def test_a_long_run_keeps_the_latest_reports_and_counts_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "REPORTS_KEPT", 5)
    recorder = BatchRecorder(tmp_path / "status.json", {"topic": "trades"})
    for batch_id in range(12):
        summary = PartitionSummary(partition=0, records=batch_id + 1)
        recorder.finish([summary], batch_id, 0.001, {"kafka poll": 0.0})
    assert [report.records for report in recorder.reports] == [8, 9, 10, 11, 12]
    assert recorder.totals["records"] == sum(range(1, 13))


def test_a_kept_report_holds_no_freshness_samples(tmp_path: Path) -> None:
    recorder = BatchRecorder(tmp_path / "status.json", {"topic": "trades"})
    observed = '{"written_at": 10.0, "event_s": {"bars_1m": [9.5, 9.75]}, "oldest_kafka_s": 9.0}'
    summary = PartitionSummary(partition=0, records=2, observed=observed)
    report = recorder.finish([summary], 0, 0.001, {})
    assert (report.freshness_s, report.kafka_freshness_s) == ({}, [])
    assert recorder.reports[-1] is report


def test_the_status_file_holds_the_processs_python_blocks(tmp_path: Path) -> None:
    recorder = BatchRecorder(tmp_path / "status.json", {"topic": "trades"})
    recorder.finish([PartitionSummary(partition=0, records=1)], 0, 0.001, {})
    status = read_status(tmp_path / "status.json")
    assert status is not None and status["topic"] == "trades"
    assert isinstance(status["python_blocks"], int) and status["python_blocks"] > 1_000


def test_the_status_file_holds_what_the_partitions_states_held_after_their_last_batch(
    tmp_path: Path,
) -> None:
    recorder = BatchRecorder(tmp_path / "status.json", {"topic": "trades"})
    recorder.finish([PartitionSummary(partition=0, records=1)], 0, 0.001, {})
    status = read_status(tmp_path / "status.json")
    assert status is not None and status["state_tiles"] is None  # nothing counted yet
    first = [
        PartitionSummary(partition=0, records=1, state_tiles=10, state_open_events=100),
        PartitionSummary(partition=1, records=1, state_tiles=20, state_open_events=200),
    ]
    recorder.finish(first, 1, 0.001, {})
    # Partition 1 had no records in the next batch: its last count stands.
    recorder.finish(
        [PartitionSummary(partition=0, records=1, state_tiles=12, state_open_events=90)],
        2, 0.001, {},
    )  # fmt: skip
    status = read_status(tmp_path / "status.json")
    assert status is not None
    assert (status["state_tiles"], status["state_open_events"]) == (32, 290)
    assert "state_tiles" not in recorder.totals  # a level, not a count summed over batches
