from __future__ import annotations

import gzip
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from featurestore.errors import ValidationError
from featurestore.events.model import Quote
from featurestore.ingest import LeanQuoteFile
from featurestore.ingest import LeanTradeFile
from featurestore.ingest import RecordRejectedError
from featurestore.ingest import SourceRecord
from featurestore.ingest import market_data_dir
from featurestore.ingest import open_event_file
from featurestore.ingest import validate_quote

MS_0930 = (9 * 3600 + 30 * 60) * 1000
NAME = "20131007_ibm_Quote_Tick.csv.gz"


def write_lean(tmp_path: Path, lines: list[str], name: str = NAME) -> Path:
    path = tmp_path / name
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines))
    return path


def outcome(record: SourceRecord) -> Quote | str:
    """The quote a record becomes, or its rejection code."""
    try:
        return validate_quote(record)
    except RecordRejectedError as exc:
        return exc.code


def test_each_row_yields_the_book_after_its_update(tmp_path: Path) -> None:
    path = write_lean(
        tmp_path,
        [
            f"{MS_0930},0,0,1818000,300,Q,1,0",  # ask only: the book is one-sided
            f"{MS_0930 + 1},1817000,200,0,0,P,1,0",  # bid: now both sides
            f"{MS_0930 + 2},0,0,1817500,100,N,1,0",  # a better ask; the bid is carried
            f"{MS_0930 + 3},1817100,400,1817400,500,Z,1,0",  # both sides at once
        ],
    )
    records = list(LeanQuoteFile(path))
    assert [r.kind for r in records] == ["quote"] * 4
    assert outcome(records[0]) == "one_sided"
    assert records[0].reject == "one_sided: no bid quoted yet in this file"
    second, third, fourth = (validate_quote(r) for r in records[1:])
    assert second == Quote(
        symbol="IBM",
        event_time=datetime(2013, 10, 7, 13, 30, 0, 1000, tzinfo=UTC),
        bid_price=181.70,
        bid_size=200,
        ask_price=181.80,
        ask_size=300,
        quote_id=f"{NAME}:2",
        exchange="P",
        conditions=("1",),
        source=NAME,
    )
    assert (third.bid_price, third.bid_size, third.ask_price, third.ask_size) == (
        181.70,
        200,
        181.75,
        100,
    )
    assert third.exchange == "N"
    assert (fourth.bid_price, fourth.ask_price, fourth.exchange) == (181.71, 181.74, "Z")


def test_rejected_rows_leave_the_book_as_it_was(tmp_path: Path) -> None:
    path = write_lean(
        tmp_path,
        [
            f"{MS_0930},1817000,200,1818000,300,P,1,0",
            f"{MS_0930 + 1},1900000,100,0,0,Q,1,1",  # flagged by the vendor
            f"{MS_0930 + 2},-5,100,0,0,Q,1,0",  # a quoted side with a negative price
            f"{MS_0930 + 3},0,0,1818500,-100,Q,1,0",  # a negative size
            f"{MS_0930 + 4},0,0,0,0,Q,1,0",  # quotes nothing
            "garbage",
            f"{MS_0930 + 6},x,100,0,0,Q,1,0",
            f"{MS_0930 + 7},0,0,1817900,100,N,1,0",
        ],
    )
    records = list(LeanQuoteFile(path))
    codes = [outcome(r) for r in records[1:7]]
    assert codes == [
        "suspicious",
        "non_positive_price",
        "negative_size",
        "empty_quote",
        "unparsable",
        "unparsable",
    ]
    assert records[1].reject == "suspicious: flagged by the vendor (column 8 = 1)"
    assert records[5].raw_bytes() == b"garbage"
    last = validate_quote(records[7])
    # The flagged bid (190.00) and the bad sides never entered the book.
    assert (last.bid_price, last.bid_size, last.ask_price, last.ask_size) == (
        181.70,
        200,
        181.79,
        100,
    )


def test_a_crossed_book_is_rejected_but_its_row_still_updates_the_book(tmp_path: Path) -> None:
    path = write_lean(
        tmp_path,
        [
            f"{MS_0930},1817000,200,1818000,300,P,1,0",
            f"{MS_0930 + 1},1818500,100,0,0,Q,1,0",  # bid above the last ask: crossed
            f"{MS_0930 + 1},0,0,1819000,100,Q,1,0",  # the ask moves up: uncrossed
        ],
    )
    _, crossed, after = list(LeanQuoteFile(path))
    with pytest.raises(RecordRejectedError) as caught:
        validate_quote(crossed)
    assert caught.value.code == "crossed"
    assert caught.value.reason == "crossed: bid_price 181.85 > ask_price 181.8"
    quote = validate_quote(after)
    assert (quote.bid_price, quote.ask_price) == (181.85, 181.90)


def test_a_locked_book_is_valid(tmp_path: Path) -> None:
    path = write_lean(tmp_path, [f"{MS_0930},1817000,200,1817000,300,P,1,0"])
    quote = validate_quote(next(iter(LeanQuoteFile(path))))
    assert quote.bid_price == quote.ask_price == 181.70


def test_ids_are_deterministic_and_files_are_told_apart_by_name(tmp_path: Path) -> None:
    lines = [f"{MS_0930 + i},1817000,200,1818000,{i + 1}00,P,1,0" for i in range(4)]
    path = write_lean(tmp_path, lines)
    first = [validate_quote(r) for r in LeanQuoteFile(path)]
    assert first == [validate_quote(r) for r in LeanQuoteFile(path)]
    assert [q.quote_id for q in first] == [f"{NAME}:{i}" for i in range(1, 5)]
    assert isinstance(open_event_file(path), LeanQuoteFile)
    with pytest.raises(ValidationError, match="not a LEAN tick trade file name"):
        LeanTradeFile(path)
    trades = write_lean(tmp_path, ["1,1,1,P,0,0"], "20131007_ibm_Trade_Tick.csv.gz")
    with pytest.raises(ValidationError, match="not a LEAN tick quote file name"):
        LeanQuoteFile(trades)


def test_winter_time_is_est(tmp_path: Path) -> None:
    path = tmp_path / "20140115_ibm_Quote_Tick.csv"  # not gzipped
    path.write_text(f"{MS_0930},1817000,200,1818000,300,P,1,0\r\n")
    quote = validate_quote(next(iter(LeanQuoteFile(path))))
    assert quote.event_time == datetime(2014, 1, 15, 14, 30, tzinfo=UTC)


def test_a_real_quote_file() -> None:
    source = open_event_file(market_data_dir() / NAME)
    assert isinstance(source, LeanQuoteFile)
    records = []
    for record in source:
        records.append(record)
        if len(records) == 3000:
            break
    # Line 1 (04:00:00.054 New York = 08:00:00.054 UTC) quotes only the ask.
    assert outcome(records[0]) == "one_sided"
    first = validate_quote(records[1])
    assert first.event_time == datetime(2013, 10, 7, 8, 0, 0, 241000, tzinfo=UTC)
    assert (first.bid_price, first.ask_price) == (180.01, 183.63)
    codes = {outcome(r) for r in records if not isinstance(outcome(r), Quote)}
    assert codes <= {"one_sided", "crossed"}
