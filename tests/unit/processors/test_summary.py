"""A partition's summary survives its row (Arrow and Spark's DDL) and sums into a report."""

from __future__ import annotations

import pyarrow as pa

from processors.report import BatchReport
from processors.summary import SECONDS
from processors.summary import SUMMARY_DDL
from processors.summary import SUMMARY_SCHEMA
from processors.summary import PartitionSummary


def test_summary_row_round_trip_through_arrow() -> None:
    summary = PartitionSummary(
        partition=3, records=10, skipped=2, rows=5, rows_by_view={"bars_1m": 4, "rolling_1m": 1},
        dead_letters=1, online_rows=2, state_bytes=99, state_tiles=7, state_open_events=40,
        seconds={**dict.fromkeys(SECONDS, 0.0), "decode_s": 0.25, "redis_s": 0.5},
        hook_rows=b"", observed='{"written_at": 1.0}',
    )  # fmt: skip
    batch = pa.RecordBatch.from_pylist([summary.row()], schema=SUMMARY_SCHEMA)
    assert batch.schema.names == [
        name for name, _ in (p.split(" ") for p in SUMMARY_DDL.split(", "))
    ]
    assert PartitionSummary.from_row(batch.to_pylist()[0]) == summary


def test_report_sums_the_summaries() -> None:
    one = PartitionSummary(partition=0, records=3, rows=2, rows_by_view={"bars_1m": 2})
    two = PartitionSummary(partition=1, records=4, rows=1, rows_by_view={"bars_1m": 1})
    two.seconds["postgres_s"] = 0.125
    report = BatchReport.of([one, two], wall_s=1.0)
    assert (report.partitions, report.records, report.rows) == (2, 7, 3)
    assert report.rows_by_view == {"bars_1m": 3}
    assert report.seconds["postgres rows + commit (tasks)"] == 0.125
