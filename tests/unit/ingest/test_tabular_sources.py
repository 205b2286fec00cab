from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import ValidationError
from featurestore.ingest import (
    CsvFile,
    ParquetFile,
    RecordRejectedError,
    open_event_file,
    validate_trade,
)

CSV = """symbol,price,size,event_time,exchange,conditions,trade_id
aig,48.5,100,2013-10-07T13:30:00.250+00:00,P,@|F,
IBM,abc,100,2013-10-07T13:30:01Z,N,,ibm-7
SPY,168.1,50,2013-10-07 09:30:02,Z,,
BAC,,100,2013-10-07T13:30:03Z,Q,,
"""


def test_csv_columns_and_reasons(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(CSV)
    records = list(open_event_file(path))
    assert isinstance(open_event_file(path), CsvFile)
    assert [r.line for r in records] == [2, 3, 4, 5]
    trade = validate_trade(records[0])
    assert trade.symbol == "AIG"
    assert trade.conditions == ("@", "F")
    assert trade.trade_id == "trades.csv:2"
    assert trade.event_time == datetime(2013, 10, 7, 13, 30, 0, 250000, tzinfo=UTC)
    codes = []
    for r in records[1:]:
        with pytest.raises(RecordRejectedError) as caught:
            validate_trade(r)
        codes.append(caught.value.code)
    assert codes == ["wrong_type", "naive_time", "missing_field"]
    assert records[1].raw_bytes() == b"IBM,abc,100,2013-10-07T13:30:01Z,N,,ibm-7"


def test_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    table = pa.table(
        {
            "symbol": ["AIG", "IBM"],
            "price": [48.5, -1.0],
            "size": [100, 200],
            "event_time": pa.array(
                [datetime(2013, 10, 7, 13, 30), datetime(2013, 10, 7, 13, 31)],
                pa.timestamp("us", tz="UTC"),
            ),
            "exchange": ["P", "N"],
            "conditions": [["@"], []],
        }
    )
    pq.write_table(table, path)
    source = open_event_file(path)
    assert isinstance(source, ParquetFile)
    records = list(source)
    trade = validate_trade(records[0])
    assert trade.trade_id == "trades.parquet:1"
    assert trade.conditions == ("@",)
    assert trade.event_time == datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
    with pytest.raises(RecordRejectedError, match="non_positive_price"):
        validate_trade(records[1])
    assert b'"price": -1.0' in records[1].raw_bytes()


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("a,b", "symbol"),
        ("symbol,event_time,size", "price"),
        ("symbol,event_time,bid_price,bid_size,ask_price", "ask_size"),
    ],
)
def test_a_csv_without_a_required_column_is_refused_naming_it(
    tmp_path: Path, header: str, missing: str
) -> None:
    """Every row would be dead-lettered: the file is refused before anything is sent."""
    path = tmp_path / "events.csv"
    path.write_text(f"{header}\n1,2,3,4,5\n")
    with pytest.raises(ValidationError, match=rf"events\.csv: no column '{missing}'") as caught:
        open_event_file(path)
    assert caught.value.field == missing


def test_a_parquet_file_without_a_required_column_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    pq.write_table(pa.table({"symbol": ["AIG"], "price": [48.5], "size": [100]}), path)
    with pytest.raises(ValidationError, match=r"trades\.parquet: no column 'event_time'"):
        open_event_file(path)
