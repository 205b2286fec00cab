from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from featurestore.errors import ValidationError
from featurestore.offline.entities import entity_keys
from featurestore.offline.entities import iter_entity_batches


def _batch(**columns: object) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(columns)


def test_aware_timestamps_are_converted_to_utc() -> None:
    ts = pd.to_datetime(["2024-01-01T02:00:00+02:00"])
    keys = entity_keys(
        _batch(symbol=["A"], event_timestamp=pa.array(ts)), "symbol", "event_timestamp"
    )
    assert not keys.naive
    assert keys.timestamp.type == pa.timestamp("us", tz="UTC")
    assert keys.timestamp[0].as_py() == datetime.fromisoformat("2024-01-01T00:00:00+00:00")


def test_naive_timestamps_are_taken_as_utc_or_rejected() -> None:
    batch = _batch(symbol=["A"], event_timestamp=pa.array([datetime(2024, 1, 1, 5)]))
    keys = entity_keys(batch, "symbol", "event_timestamp")
    assert keys.naive
    assert keys.timestamp[0].as_py() == datetime.fromisoformat("2024-01-01T05:00:00+00:00")
    with pytest.raises(ValidationError, match="without a timezone") as info:
        entity_keys(batch, "symbol", "event_timestamp", allow_naive=False)
    assert info.value.field == "event_timestamp"


def test_iso_strings_with_and_without_offsets() -> None:
    aware = entity_keys(_batch(symbol=["A"], t=["2024-01-01T01:00:00+01:00"]), "symbol", "t")
    naive = entity_keys(_batch(symbol=["A"], t=["2024-01-01T00:00:00"]), "symbol", "t")
    assert not aware.naive and naive.naive
    assert aware.timestamp.equals(naive.timestamp)
    with pytest.raises(ValidationError, match="ISO 8601"):
        entity_keys(
            _batch(symbol=["A", "B"], t=["2024-01-01T00:00:00Z", "2024-01-01"]), "symbol", "t"
        )


@pytest.mark.parametrize(
    ("batch", "field", "match"),
    [
        (_batch(event_timestamp=[datetime(2024, 1, 1)]), "symbol", "no column 'symbol'"),
        (_batch(symbol=["A"]), "event_timestamp", "no column 'event_timestamp'"),
        (_batch(symbol=[1], event_timestamp=[datetime(2024, 1, 1)]), "symbol", "strings"),
        (_batch(symbol=["A"], event_timestamp=[5]), "event_timestamp", "timestamps"),
        (_batch(symbol=["A", None], event_timestamp=[datetime(2024, 1, 1)] * 2), "symbol", "row 1"),
        (
            _batch(symbol=["A", "B"], event_timestamp=[datetime(2024, 1, 1), None]),
            "event_timestamp",
            "row 1",
        ),
    ],
)
def test_bad_entity_rows(batch: pa.RecordBatch, field: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        entity_keys(batch, "symbol", "event_timestamp")
    assert info.value.field == field


def test_batches_from_frames_tables_and_files(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"symbol": list("abcde"), "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC")}
    )
    assert [b.num_rows for b in iter_entity_batches(frame, 2)] == [2, 2, 1]
    table = pa.Table.from_pandas(frame)
    assert [b.num_rows for b in iter_entity_batches(table, 3)] == [3, 2]
    frame.to_parquet(tmp_path / "e.parquet")
    assert sum(b.num_rows for b in iter_entity_batches(tmp_path / "e.parquet", 2)) == 5
    with pytest.raises(ValidationError, match="does not exist"):
        list(iter_entity_batches(tmp_path / "missing.csv", 2))
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(ValidationError, match=r"\.parquet or \.csv"):
        list(iter_entity_batches(tmp_path / "e.json", 2))


def test_frames_mixing_naive_and_aware_datetimes_are_refused() -> None:
    aware = datetime(2024, 1, 1, 5, tzinfo=timezone(timedelta(hours=2)))
    frame = pd.DataFrame(
        {"symbol": ["A", "B", "C"], "event_timestamp": [aware, aware, datetime(2024, 1, 1, 5)]}
    )
    with pytest.raises(
        ValidationError, match=r"with a timezone \(row 0\) and without one \(row 2\)"
    ):
        list(iter_entity_batches(frame, 10))
    strings = frame.assign(event_timestamp=["2024-01-01T00:00Z", aware, aware])
    with pytest.raises(ValidationError, match="'event_timestamp' mixes types") as info:
        list(iter_entity_batches(strings, 10))
    assert info.value.field == "event_timestamp"


def test_frames_with_several_utc_offsets_are_converted() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["A", "B"],
            "event_timestamp": [
                pd.Timestamp("2024-01-01T01:00+01:00"),
                pd.Timestamp("2024-01-01T02:00+02:00"),
            ],
        }
    )
    (batch,) = iter_entity_batches(frame, 10)
    keys = entity_keys(batch, "symbol", "event_timestamp")
    assert not keys.naive
    assert keys.timestamp.to_pylist() == [datetime(2024, 1, 1, tzinfo=UTC)] * 2
