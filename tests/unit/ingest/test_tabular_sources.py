from __future__ import annotations

from datetime import UTC
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import ValidationError
from featurestore.ingest import CsvFile
from featurestore.ingest import ParquetFile
from featurestore.ingest import RecordRejectedError
from featurestore.ingest import SourceRecord
from featurestore.ingest import open_event_file
from featurestore.ingest import validate_trade

T0 = datetime(2013, 10, 7, 13, 30, tzinfo=UTC)
T0_TEXT = "2013-10-07T13:30:00Z"

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


def _reason(record: SourceRecord) -> str:
    with pytest.raises(RecordRejectedError) as caught:
        validate_trade(record)
    return caught.value.reason


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_column_named_twice_is_refused_naming_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"trades.{suffix}"
    if suffix == "csv":
        path.write_text("symbol,price,size,event_time,price\nAIG,48.5,100,2024-01-02T14:30Z,1\n")
    else:
        columns = [pa.array(["AIG"]), pa.array([48.5]), pa.array([1]), pa.array([T0]), [1.0]]
        names = ["symbol", "price", "size", "event_time", "price"]
        pq.write_table(pa.table(columns, names=names), path)
    with pytest.raises(ValidationError, match=rf"trades\.{suffix}: column 'price' appears more"):
        open_event_file(path)


def test_a_column_that_is_not_read_may_be_named_twice(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("symbol,price,size,event_time,note,note\nAIG,48.5,1,2024-01-02T14:30Z,a,b\n")
    assert validate_trade(next(iter(open_event_file(path)))).price == 48.5


def test_csv_numbers_convert_exactly_or_say_why_not(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    rows = [
        "AIG,48.5,9007199254740993.0",
        "AIG,48.5,12.0",
        "AIG,48.5,100.5",
        "AIG,1e400,1",
        "AIG,1e-400,1",
        "AIG,48.5,1e30",
        "AIG,48.5,9223372036854775808",
        "AIG,inf,1",
    ]
    path.write_text("symbol,price,size,event_time\n" + "".join(f"{r},{T0_TEXT}\n" for r in rows))
    first, second, *rejected = open_event_file(path)
    assert validate_trade(first).size == 9007199254740993
    assert validate_trade(second).size == 12
    assert [_reason(r) for r in rejected] == [
        "wrong_type: size must be an integer, got '100.5'",
        "out_of_range: price is 1E+400, beyond the range of a float (about 1e-308 to 1.8e308)",
        "out_of_range: price is 1E-400, beyond the range of a float (about 1e-308 to 1.8e308)",
        "out_of_range: size is 1E+30, above the largest size 9223372036854775807 (64-bit)",
        "out_of_range: size is 9223372036854775808, above the largest size 9223372036854775807"
        " (64-bit)",
        "not_finite: price is inf",
    ]


def test_parquet_decimal_prices_are_exact_and_a_date_is_not_a_time(tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    table = pa.table(
        {
            "symbol": ["AIG", "AIG"],
            "price": pa.array([Decimal("190.50"), Decimal("0.0001")], pa.decimal128(10, 4)),
            "size": pa.array([Decimal("100"), Decimal("7")], pa.decimal128(10, 0)),
            "event_time": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path)
    assert [(t.price, t.size) for t in map(validate_trade, open_event_file(path))] == [
        (190.5, 100),
        (0.0001, 7),
    ]
    pq.write_table(table.set_column(3, "event_time", pa.array([T0.date()] * 2)), path)
    assert _reason(next(iter(open_event_file(path)))) == (
        "wrong_type: event_time must be a timestamp with a time zone, got the date 2013-10-07"
    )


def _invalid_utf8(values: list[bytes]) -> pa.Array:
    data = b"".join(values)
    offsets = [0]
    for value in values:
        offsets.append(offsets[-1] + len(value))
    buffers = [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


@pytest.mark.parametrize("batch_size", [2, 65_536])
def test_a_parquet_value_without_a_python_form_costs_its_row_alone(
    tmp_path: Path, batch_size: int
) -> None:
    seconds = [1_381_152_600 + i for i in range(6)]
    seconds[1] = 300_000_000_000  # year 11476
    symbols = [b"AIG"] * 6
    symbols[4] = b"AI\xffG"
    path = tmp_path / "trades.parquet"
    table = pa.table(
        {
            "symbol": _invalid_utf8(symbols),
            "price": [48.5] * 6,
            "size": list(range(6)),
            "event_time": pa.array(seconds, pa.timestamp("s", tz="UTC")),
        }
    )
    pq.write_table(table, path, row_group_size=2)
    records = list(ParquetFile(path, batch_size=batch_size))
    assert [r.line for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.reject for r in records] == [
        None,
        "out_of_range: column 'event_time' holds 11476-08-15 05:20:00.000Z, outside years 1-9999",
        None,
        None,
        "unparsable: column 'symbol' is not UTF-8 text (byte 0xff at offset 2)",
        None,
    ]
    assert [validate_trade(r).size for r in records if r.reject is None] == [0, 2, 3, 5]
    assert b'"event_time": "11476-08-15 05:20:00.000Z"' in records[1].raw_bytes()
    assert records[1].fields["symbol"] == "AIG"
