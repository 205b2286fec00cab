from __future__ import annotations

import gzip
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import ValidationError
from featurestore.ingest import CsvFile
from featurestore.ingest import ParquetFile
from featurestore.ingest import RecordRejectedError
from featurestore.ingest import SourceRecord
from featurestore.ingest import metric_layout
from featurestore.ingest import open_event_file
from featurestore.ingest import validate_metric
from featurestore.ingest import validate_quote

QUOTES_CSV = """symbol,event_time,bid_price,bid_size,ask_price,ask_size,exchange
ibm,2013-10-07T13:30:00.5Z,180.00,100,180.05,300,N
IBM,2013-10-07T13:30:01Z,180.10,100,180.05,300,
IBM,2013-10-07T13:30:02Z,NaN,100,180.05,300,P
"""

METRICS_CSV = """host,ts,cpu,region,rack,note
web-1,2024-01-02T14:30:00Z,0.5,eu,r1,ok
web-2,2024-01-02T14:30:01+01:00,7,us,,
web-1,2024-01-02T14:30:02Z,NaN,eu,r1,
,2024-01-02T14:30:03Z,1.0,eu,r1,
web-3,2024-01-02 14:30:04,1.0,eu,r1,
web-3,2024-01-02T14:30:05Z,lots,eu,r1,
web-3,2024-01-02T14:30:06Z
"""


def code_of(record: SourceRecord) -> str:
    validate = validate_quote if record.kind == "quote" else validate_metric
    with pytest.raises(RecordRejectedError) as caught:
        validate(record)
    return caught.value.code


def test_a_csv_with_bid_and_ask_columns_is_a_quote_file(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(QUOTES_CSV)
    source = open_event_file(path)
    assert isinstance(source, CsvFile) and source.kind == "quote"
    records = list(source)
    quote = validate_quote(records[0])
    assert (quote.symbol, quote.bid_price, quote.ask_size, quote.exchange) == (
        "IBM",
        180.0,
        300,
        "N",
    )
    assert quote.quote_id == "quotes.csv.gz:2"
    assert quote.event_time == datetime(2013, 10, 7, 13, 30, 0, 500000, tzinfo=UTC)
    assert [code_of(r) for r in records[1:]] == ["crossed", "not_finite"]


def test_a_parquet_quote_file(tmp_path: Path) -> None:
    path = tmp_path / "quotes.parquet"
    table = pa.table(
        {
            "symbol": ["BAC", "BAC"],
            "event_time": pa.array(
                [datetime(2013, 10, 7, 13, 30), datetime(2013, 10, 7, 13, 31)], pa.timestamp("us")
            ),
            "bid_price": [14.0, 14.0],
            "bid_size": [100, -1],
            "ask_price": [14.01, 14.01],
            "ask_size": [200, 200],
            "quote_id": ["a", "b"],
        }
    )
    pq.write_table(table, path)
    source = open_event_file(path)
    assert isinstance(source, ParquetFile) and source.kind == "quote"
    first, second = list(source)
    quote = validate_quote(first)
    assert (quote.quote_id, quote.exchange) == ("a", None)
    assert quote.event_time == datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
    assert code_of(second) == "negative_size"


def test_a_metric_csv_with_named_columns_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "cpu.csv"
    path.write_text(METRICS_CSV)
    layout = metric_layout(
        entity_column="host",
        time_column="ts",
        value_column="cpu",
        name="cpu_load",
        tag_columns=["region", "rack"],
    )
    source = open_event_file(path, layout=layout)
    assert source.kind == "metric"
    records = list(source)
    first, second = (validate_metric(r) for r in records[:2])
    assert (first.entity, first.value, first.name, dict(first.tags)) == (
        "web-1",
        0.5,
        "cpu_load",
        {"region": "eu", "rack": "r1"},
    )
    assert first.metric_id == "cpu.csv:2"
    # An empty tag cell is an absent tag; the time is converted to UTC.
    assert dict(second.tags) == {"region": "us"}
    assert second.event_time == datetime(2024, 1, 2, 13, 30, 1, tzinfo=UTC)
    codes = [code_of(r) for r in records[2:]]
    assert codes == ["not_finite", "missing_field", "naive_time", "wrong_type", "unparsable"]
    assert records[-1].raw_bytes() == b"web-3,2024-01-02T14:30:06Z"


def test_a_missing_metric_column_is_named_when_the_file_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "cpu.csv"
    path.write_text(METRICS_CSV)
    for missing, layout in (
        ("value", metric_layout(entity_column="host", time_column="ts", value_column="value")),
        (
            "zone",
            metric_layout(
                entity_column="host", time_column="ts", value_column="cpu", tag_columns=["zone"]
            ),
        ),
    ):
        with pytest.raises(ValidationError, match=f"cpu.csv: no column '{missing}'") as caught:
            open_event_file(path, layout=layout)
        assert caught.value.field == missing
        assert "host, ts, cpu, region, rack, note" in str(caught.value)
    with pytest.raises(ValidationError, match="entity, time and value must be different columns"):
        metric_layout(entity_column="host", time_column="host", value_column="cpu")
    with pytest.raises(ValidationError, match="time, value and name must be different columns"):
        metric_layout(entity_column="host", time_column="ts", value_column="cpu", name_column="cpu")


def test_a_long_metric_table_names_each_row_s_metric(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_text(
        "host,ts,metric,value\n"
        "web-1,2024-01-02T14:30:00Z,cpu_load,0.5\n"
        "web-1,2024-01-02T14:30:00Z,mem_used,7.5e9\n"
        "web-2,2024-01-02T14:30:01Z,,0.25\n"
    )
    layout = metric_layout(
        entity_column="host", time_column="ts", value_column="value", name_column="metric"
    )
    first, second, third = list(open_event_file(path, layout=layout))
    assert [(m.entity, m.name, m.value) for m in map(validate_metric, (first, second))] == [
        ("web-1", "cpu_load", 0.5),
        ("web-1", "mem_used", 7.5e9),
    ]
    assert code_of(third) == "bad_name"  # an empty name is refused, not called "value"
    missing = metric_layout(
        entity_column="host", time_column="ts", value_column="value", name_column="metric_name"
    )
    with pytest.raises(ValidationError, match=r"hosts\.csv: no column 'metric_name'"):
        open_event_file(path, layout=missing)


def test_a_metric_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "m.pq"
    table = pa.table(
        {
            "sensor": ["s1", "s2"],
            "at": pa.array(
                [datetime(2024, 1, 2, 14, 30), datetime(2024, 1, 2, 14, 31)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "reading": [1.25, None],
            "floor": [3, 4],
        }
    )
    pq.write_table(table, path)
    layout = metric_layout(
        entity_column="sensor", time_column="at", value_column="reading", tag_columns=["floor"]
    )
    first, second = list(open_event_file(path, layout=layout))
    m = validate_metric(first)
    assert (m.entity, m.value, dict(m.tags), m.metric_id) == ("s1", 1.25, {"floor": "3"}, "m.pq:1")
    assert code_of(second) == "missing_field"
    with pytest.raises(ValidationError, match="no column 'value'"):
        open_event_file(
            path,
            layout=metric_layout(entity_column="sensor", time_column="at", value_column="value"),
        )


def test_a_file_that_is_not_parquet_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_text("not parquet")
    with pytest.raises(ValidationError, match=r"bad\.parquet: not a Parquet file"):
        open_event_file(path)
