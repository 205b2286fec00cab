from __future__ import annotations

import gzip
from datetime import UTC
from datetime import date
from datetime import datetime
from pathlib import Path

import pytest

from featurestore.errors import ValidationError
from featurestore.ingest import LeanQuoteFile
from featurestore.ingest import LeanTradeFile
from featurestore.ingest import open_event_file
from featurestore.ingest import validate_trade
from featurestore.ingest.sources.lean import lean_time_to_utc

MS_0930 = (9 * 3600 + 30 * 60) * 1000


def write_lean(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines))
    return path


def test_summer_time_is_edt(tmp_path: Path) -> None:
    path = write_lean(
        tmp_path, "20131007_aig_Trade_Tick.csv.gz", [f"{MS_0930 + 5},491800,300,P,2000,0"]
    )
    (record,) = list(LeanTradeFile(path))
    trade = validate_trade(record)
    assert trade.event_time == datetime(2013, 10, 7, 13, 30, 0, 5000, tzinfo=UTC)
    assert trade.symbol == "AIG"
    assert trade.price == 49.18
    assert trade.size == 300
    assert trade.exchange == "P"
    assert trade.conditions == ("2000",)
    assert trade.trade_id == "20131007_aig_Trade_Tick.csv.gz:1"
    assert trade.source == "20131007_aig_Trade_Tick.csv.gz"


def test_winter_time_is_est(tmp_path: Path) -> None:
    path = write_lean(tmp_path, "20140115_ibm_Trade_Tick.csv.gz", [f"{MS_0930},1800000,100,N,0,0"])
    trade = validate_trade(next(iter(LeanTradeFile(path))))
    assert trade.event_time == datetime(2014, 1, 15, 14, 30, tzinfo=UTC)
    assert trade.price == 180.0


@pytest.mark.parametrize(
    ("day", "ms", "expected"),
    [
        # 2013-03-10: clocks go forward at 02:00 EST; 01:00 is EST, 10:00 is EDT.
        (date(2013, 3, 10), 1 * 3600_000, datetime(2013, 3, 10, 6, 0, tzinfo=UTC)),
        (date(2013, 3, 10), 10 * 3600_000, datetime(2013, 3, 10, 14, 0, tzinfo=UTC)),
        # 2013-11-03: clocks go back at 02:00 EDT; 00:30 is EDT, 10:00 is EST.
        (date(2013, 11, 3), 30 * 60_000, datetime(2013, 11, 3, 4, 30, tzinfo=UTC)),
        (date(2013, 11, 3), 10 * 3600_000, datetime(2013, 11, 3, 15, 0, tzinfo=UTC)),
    ],
)
def test_dst_change_days_convert_per_row(
    tmp_path: Path, day: date, ms: int, expected: datetime
) -> None:
    assert lean_time_to_utc(day, ms) == expected
    name = f"{day:%Y%m%d}_spy_Trade_Tick.csv.gz"
    path = write_lean(tmp_path, name, [f"{ms},100,1,P,0,0"])
    assert validate_trade(next(iter(LeanTradeFile(path)))).event_time == expected


def test_suspicious_and_unparsable_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    path = write_lean(
        tmp_path,
        "20131008_bac_Trade_Tick.csv.gz",
        [
            f"{MS_0930},150000,100,Q,0,1",
            "garbage",
            f"{MS_0930},x,100,Q,0,0",
            f"{MS_0930},150000,100,Q,0,0",
        ],
    )
    records = list(LeanTradeFile(path))
    assert [r.reject for r in records][:1] == ["suspicious: flagged by the vendor (column 6 = 1)"]
    assert records[1].reject is not None and records[1].reject.startswith("unparsable")
    assert records[2].reject is not None and records[2].reject.startswith("unparsable")
    assert records[3].reject is None
    assert records[1].raw_bytes() == b"garbage"
    with pytest.raises(ValidationError, match="suspicious"):
        validate_trade(records[0])


def test_ids_are_deterministic_across_reads(tmp_path: Path) -> None:
    lines = [f"{MS_0930 + i},150000,100,Q,0,0" for i in range(5)]
    path = write_lean(tmp_path, "20131008_bac_Trade_Tick.csv.gz", lines)
    first = [validate_trade(r) for r in LeanTradeFile(path)]
    second = [validate_trade(r) for r in LeanTradeFile(path)]
    assert first == second
    assert [t.trade_id for t in first] == [
        f"20131008_bac_Trade_Tick.csv.gz:{i}" for i in range(1, 6)
    ]


def test_file_name_must_follow_the_pattern(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("symbol,event_time,price,size\n")
    with pytest.raises(ValidationError):
        LeanTradeFile(path)
    assert not isinstance(open_event_file(path), LeanTradeFile)


def test_a_real_file_reads_in_utc(market_dir: Path) -> None:
    path = market_dir / "20131007_aig_Trade_Tick.csv.gz"
    source = open_event_file(path)
    assert isinstance(source, LeanTradeFile)
    first = validate_trade(next(iter(source)))
    # 14400688 ms after midnight EDT = 04:00:00.688 New York = 08:00:00.688 UTC.
    assert first.event_time == datetime(2013, 10, 7, 8, 0, 0, 688000, tzinfo=UTC)
    assert first.price == 49.18


@pytest.fixture
def market_dir() -> Path:
    from featurestore.ingest import market_data_dir

    return market_data_dir()


def test_a_price_too_large_for_a_float_is_its_own_dead_letter(tmp_path: Path) -> None:
    huge = "9" * 400
    path = write_lean(
        tmp_path,
        "20131007_aig_Trade_Tick.csv.gz",
        [f"{MS_0930},491800,1,P,0,0", f"{MS_0930},{huge},1,P,0,0", f"{MS_0930},491800,2,P,0,0"],
    )
    records = list(LeanTradeFile(path))
    assert [r.line for r in records] == [1, 2, 3]
    assert records[1].reject is not None
    assert records[1].reject.startswith("out_of_range: column 2 (price) '99999")
    assert [validate_trade(r).size for r in (records[0], records[2])] == [1, 2]


def test_a_quote_price_too_large_for_a_float_names_its_column(tmp_path: Path) -> None:
    path = write_lean(
        tmp_path,
        "20131007_ibm_Quote_Tick.csv.gz",
        [f"{MS_0930},1800000,1,1800500,1,N,R,0", f"{MS_0930},1,1,{'9' * 400},1,N,R,0"],
    )
    first, second = LeanQuoteFile(path)
    assert first.reject is None
    assert second.reject is not None
    assert second.reject.startswith("out_of_range: column 4 (ask price) ")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            f"{MS_0930},190.5,100,Q,0,0",
            "unparsable: column 2 (price) is '190.5', not an integer number of 1/10,000 USD",
        ),
        (
            f"{MS_0930},1905000,1_00,Q,0,0",
            "unparsable: column 3 (size) is '1_00', not a whole number of shares",
        ),
        (
            "3.42e7,1905000,100,Q,0,0",
            "unparsable: column 1 (time) is '3.42e7', not whole milliseconds since midnight",
        ),
        (
            "86400000,1905000,100,Q,0,0",
            "unparsable: column 1 (time) '86400000' ms is not within a day (0 to 86399999)",
        ),
        (
            f"{MS_0930},1905000,{'9' * 5000},Q,0,0",
            "out_of_range: column 3 (size) has 5000 characters, too many digits",
        ),
    ],
)
def test_an_unparsable_cell_names_its_column_and_form(
    tmp_path: Path, row: str, reason: str
) -> None:
    path = write_lean(tmp_path, "20131007_aig_Trade_Tick.csv.gz", [row])
    (record,) = LeanTradeFile(path)
    assert record.reject == reason


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("20131345_aig_Trade_Tick.csv", "20131345_aig_Trade_Tick.csv: 20131345 is not a date"),
        ("00000101_aig_Trade_Tick.csv", "00000101_aig_Trade_Tick.csv: 00000101 is not a date"),
        (
            "99991231_aig_Trade_Tick.csv",
            "99991231_aig_Trade_Tick.csv: date 99991231 is out of range",
        ),
    ],
)
def test_an_impossible_date_in_the_name_is_refused_naming_the_file(
    tmp_path: Path, name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(f"{MS_0930},491800,300,P,0,0\n")
    with pytest.raises(ValidationError) as caught:
        open_event_file(path)
    assert str(caught.value).startswith(message)
    assert caught.value.field == "path"


def test_the_last_day_that_fits_still_reads(tmp_path: Path) -> None:
    path = write_lean(tmp_path, "99991230_aig_Trade_Tick.csv.gz", ["86399999,491800,300,P,0,0"])
    trade = validate_trade(next(iter(LeanTradeFile(path))))
    assert trade.event_time == datetime(9999, 12, 31, 4, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["20131007_AIG_TRADE_TICK.CSV.GZ", "20131007_aig_Trade_Tick.csv.Gz"]
)
def test_an_upper_case_gz_suffix_is_read_through_gzip(tmp_path: Path, name: str) -> None:
    path = write_lean(tmp_path, name, [f"{MS_0930},491800,300,P,0,0"])
    (record,) = open_event_file(path)
    assert validate_trade(record).price == 49.18
