"""The batch recorder: totals over every batch, reports of the latest ones only."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors import recorder as recorder_module
from processors.recorder import BatchRecorder
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
