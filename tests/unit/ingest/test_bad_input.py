"""Random bytes and damaged lines through the file readers and the ingest router.

Whatever a file holds, reading it never raises: it is refused as a whole with a message naming
it, or every line becomes a record that the router sends to its topic or dead-letters with a
``<code>: <detail>`` reason and the line's own bytes. No line is skipped unless it is blank.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestore.errors import ValidationError
from featurestore.events.registry import InMemorySchemaStore
from featurestore.ingest import DEAD_LETTER_REASON
from featurestore.ingest import EventSource
from featurestore.ingest import RecordKind
from featurestore.ingest import RecordRouter
from featurestore.ingest import SourceRecord
from featurestore.ingest import metric_layout
from featurestore.ingest import open_event_file
from tests.bad_input import FUZZ

DEAD = "dead-letter"
TOPICS: dict[RecordKind, str] = {"trade": "trades", "quote": "quotes", "metric": "metrics"}
ROUTER = RecordRouter(TOPICS, DEAD, InMemorySchemaStore())
HEADERS = (
    b"symbol,price,size,event_time,exchange,conditions,trade_id",
    b"symbol,event_time,bid_price,bid_size,ask_price,ask_size,exchange",
    b"host,ts,cpu",
)
GOOD_ROWS = (
    b"AAPL,190.5,100,2024-01-02T14:30:00Z,Q,@|F,t-1",
    b"IBM,2024-01-02T14:30:00.5+01:00,180.00,100,180.05,300,N",
    b"web-1,2024-01-02T14:30:00Z,0.5",
    b"34200000,1905000,100,Q,0,0",
    b"34200000,1800000,100,1800500,300,N,R,0",
)
EDGE_ROWS = (
    b"AAPL,1,1,0001-01-01T00:00:00+01:00",
    b"AAPL,1,1,9999-12-31T23:59:59-01:00",
    b"AAPL,1e400,99999999999999999999999,2024-01-02T14:30:00Z",
    b"web-1,2024-01-02T14:30:00Z," + b"9" * 5000,
    b"99999999999999999999,1,1,Q,0,0",
    b"-1,-1,-1,-1,-1,,,",
)
"""Rows at the edges of what converts: years 1 and 9999 off UTC, huge or infinite numbers."""
LEAN_NAMES = ("20240102_aapl_Trade_Tick.csv", "20240102_ibm_Quote_Tick.csv")
DIGITS_AND_MARKS = st.text(alphabet="0123456789.,:-+TZ eE|\"'\\\r\t\x00\x85\u2028", max_size=40)

lines = st.one_of(
    st.sampled_from(GOOD_ROWS),
    st.sampled_from(EDGE_ROWS),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    DIGITS_AND_MARKS.map(lambda t: t.encode().replace(b"\n", b"")),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\n", b"")),
)
"""One line without its ending: a good or edge row of some layout, random bytes or text."""


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as path:
        yield Path(path)


def _write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _route_all(source: EventSource) -> list[SourceRecord]:
    """Route every record of ``source``; check each outcome; return the records."""
    records = list(source)
    for record in records:
        out = ROUTER.route(record)
        if out.topic == DEAD:
            reason = dict(out.headers)[DEAD_LETTER_REASON].decode()
            code, _, detail = reason.partition(": ")
            assert code == out.reason_code and code and detail, reason
            assert out.value == record.raw_bytes()
            assert out.event_time is None
        else:
            assert out.reason_code is None and record.reject is None
            assert out.topic == TOPICS[record.kind]
            assert out.value[:1] == b"\x00" and out.event_time is not None  # Confluent framing
    return records


def _blank(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return False


def _assert_every_line_accounted_for(
    content: bytes, records: list[SourceRecord], first_data_line: int
) -> None:
    raw_lines = content.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines_read = {r.line: r for r in records}
    assert len(lines_read) == len(records)
    for number, raw in enumerate(raw_lines, start=1):
        if number < first_data_line:
            continue
        line = raw.rstrip(b"\r\n")
        if number in lines_read:
            assert lines_read[number].raw_bytes() == line
        else:
            assert _blank(line), (number, line)


@FUZZ
@given(header=st.sampled_from(HEADERS), body=st.lists(lines, max_size=12), crlf=st.booleans())
def test_csv_lines_are_sent_or_dead_lettered_with_a_reason(
    folder: Path, header: bytes, body: list[bytes], crlf: bool
) -> None:
    content = (b"\r\n" if crlf else b"\n").join([header, *body]) + b"\n"
    path = _write(folder, "events.csv", content)
    layout = None
    if header.startswith(b"host"):
        layout = metric_layout(entity_column="host", time_column="ts", value_column="cpu")
    records = _route_all(open_event_file(path, layout=layout))
    _assert_every_line_accounted_for(content, records, first_data_line=2)


@FUZZ
@given(name=st.sampled_from(LEAN_NAMES), body=st.lists(lines, max_size=12))
def test_vendor_lines_are_sent_or_dead_lettered_with_a_reason(
    folder: Path, name: str, body: list[bytes]
) -> None:
    content = b"\n".join(body) + b"\n"
    path = _write(folder, name, content)
    records = _route_all(open_event_file(path))
    _assert_every_line_accounted_for(content, records, first_data_line=1)


@FUZZ
@given(data=st.binary(max_size=2_000), name=st.sampled_from(["blob.csv", *LEAN_NAMES]))
def test_a_binary_file_is_refused_naming_it_or_dead_lettered(
    folder: Path, data: bytes, name: str
) -> None:
    path = _write(folder, name, data)
    try:
        source = open_event_file(path)
    except ValidationError as exc:
        assert str(exc).startswith(f"{name}: "), exc
        return
    _route_all(source)


@FUZZ
@given(body=st.lists(lines, min_size=1, max_size=12), cut=st.floats(0.0, 1.0))
def test_a_truncated_gzip_file_ends_with_an_unreadable_dead_letter(
    folder: Path, body: list[bytes], cut: float
) -> None:
    whole = gzip.compress(b"\n".join([HEADERS[0], *body]) + b"\n")
    path = _write(folder, "trades.csv.gz", whole[: int(len(whole) * cut)])
    try:
        source = open_event_file(path)
    except ValidationError as exc:
        assert str(exc).startswith("trades.csv.gz: "), exc
        return
    records = _route_all(source)
    problems = [r.reject for r in records if r.reject and r.reject.startswith("unreadable")]
    assert len(problems) <= 1
    if problems:
        assert records[-1].reject == problems[0]


def test_a_binary_file_named_csv_is_refused_with_its_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "prices.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    with pytest.raises(ValidationError) as caught:
        open_event_file(path)
    assert str(caught.value) == (
        "prices.csv: not a CSV file of UTF-8 text (header line: unparsable: not UTF-8 text"
        " (byte 0x89 at offset 0))"
    )


def test_lines_that_are_not_utf8_text_are_dead_lettered_with_the_offset(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "trades.csv",
        HEADERS[0] + b"\nAAPL,1.5,1,2024-01-02T14:30:00Z,Q\xe9,,\nAAPL,1.5,1\x002\n" + GOOD_ROWS[0],
    )
    reasons = [dict(ROUTER.route(r).headers).get(DEAD_LETTER_REASON) for r in open_event_file(path)]
    assert reasons == [
        b"unparsable: not UTF-8 text (byte 0xe9 at offset 33)",
        b"unparsable: a NUL byte at offset 10 (binary data, not text)",
        None,
    ]
