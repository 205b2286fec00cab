"""Kafka records -> the engine's events (entity, time, id, numeric fields), or dead letters.

A text field that the definitions compare with texts (``name == 'cpu_load'``) is read as the
code of its text (:meth:`processors.features.plan.SourcePlan.text_codes`), so every field the
engine reads is a number.

Each record is decoded with its own writer schema (by the id in its Confluent header, fetched
once per id from the registry) and projected onto the fields the applied definitions read
(:class:`processors.features.plan.SourcePlan`). So a topic holding several versions of an event
is read correctly, and a record that cannot be decoded, lacks a field, or carries a value that
is not a finite number is dead-lettered instead of stopping the job. An unreachable registry is
not the record's fault: that error propagates and fails the batch, which is retried.
"""

from __future__ import annotations

import atexit
import io
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import cache
from typing import Any
from typing import cast

import fastavro
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from fastavro import schemaless_reader
from fastavro.read import SchemaResolutionError

from featurestore.config import SchemaRegistrySettings
from featurestore.definitions.model import NUMERIC_AVRO_TYPES
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from featurestore.events import ConfluentSchemaStore
from featurestore.events import SchemaStore
from featurestore.events.wire import HEADER_SIZE
from featurestore.events.wire import SerializationError
from featurestore.events.wire import parse_header
from processors.avro_columns import Column
from processors.avro_columns import ColumnarReader
from processors.avro_columns import UnsupportedSchemaError
from processors.avro_columns import pack
from processors.features import EventBatch
from processors.features.plan import SourcePlan

__all__ = [
    "DeadLetter",
    "DecodedRecords",
    "EventDecoder",
    "KafkaRecords",
    "decode_records",
    "decoder_for",
]

_DECODE_ERRORS = (SchemaResolutionError, EOFError, ValueError, TypeError, IndexError, KeyError)
_NUMERIC = set(NUMERIC_AVRO_TYPES)
"""The fields columns and aggregations read (validation refuses any other)."""


DEAD_LETTER_CODES = ("invalid", "key-mismatch", "undecodable", "late")
"""The kinds of reason a dead letter has: each reason is ``<code>: <detail>`` (``late`` alone)."""


@dataclass(frozen=True)
class DeadLetter:
    """A record the processors could not use, with why."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int
    reason: str
    """``<code>: <detail>``, the detail naming the entity or the error (see DEAD_LETTER_CODES)."""

    @property
    def code(self) -> str:
        """The reason's kind, one of :data:`DEAD_LETTER_CODES`: what the metrics count by."""
        return self.reason.partition(":")[0]


@dataclass(frozen=True)
class KafkaRecords:
    """Kafka records as columns, in log order: (partition, offset)."""

    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]
    partition: npt.NDArray[np.int64]
    offset: npt.NDArray[np.int64]
    timestamp_ms: npt.NDArray[np.int64]

    def __len__(self) -> int:
        """The number of records."""
        return len(self.offset)

    @classmethod
    def of(
        cls,
        keys: Sequence[bytes | None],
        values: Sequence[bytes | None],
        partition: Sequence[int] | npt.NDArray[np.int64],
        offset: Sequence[int] | npt.NDArray[np.int64],
        timestamp_ms: Sequence[int] | npt.NDArray[np.int64],
    ) -> KafkaRecords:
        """Records from columns in any order; they are put in log order."""
        part = np.asarray(partition, dtype=np.int64)
        off = np.asarray(offset, dtype=np.int64)
        stamps = np.asarray(timestamp_ms, dtype=np.int64)
        if len({len(keys), len(values), len(part), len(off), len(stamps)}) != 1:
            raise ValueError("record columns have different lengths")
        order = np.lexsort((off, part))
        if len(order) and not np.array_equal(order, np.arange(len(order))):
            keys = [keys[i] for i in order]
            values = [values[i] for i in order]
            part, off, stamps = part[order], off[order], stamps[order]
        return cls(list(keys), list(values), part, off, stamps)

    @classmethod
    def from_arrow(cls, table: pa.Table | pa.RecordBatch) -> KafkaRecords:
        """Records from Spark's Kafka columns: key, value, partition, offset, timestamp_ms."""
        return cls.of(
            table.column("key").to_pylist(),
            table.column("value").to_pylist(),
            table.column("partition").to_numpy(zero_copy_only=False),
            table.column("offset").to_numpy(zero_copy_only=False),
            table.column("timestamp_ms").to_numpy(zero_copy_only=False),
        )

    def slice(self, start: int, stop: int | None = None) -> KafkaRecords:
        """Records ``start..stop``."""
        return KafkaRecords(
            self.keys[start:stop], self.values[start:stop], self.partition[start:stop],
            self.offset[start:stop], self.timestamp_ms[start:stop],
        )  # fmt: skip

    def dead_letter(self, i: int, reason: str) -> DeadLetter:
        """A dead letter for record ``i``."""
        return DeadLetter(
            self.keys[i], self.values[i], int(self.partition[i]), int(self.offset[i]),
            int(self.timestamp_ms[i]), reason,
        )  # fmt: skip


@dataclass
class DecodedRecords:
    """The usable events of some records, in log order, and the others."""

    events: EventBatch
    records: KafkaRecords
    dead: list[DeadLetter] = field(default_factory=list)
    index: npt.NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))
    """Position in :attr:`records` of each event of :attr:`events`."""

    def dead_letter(self, event: int, reason: str) -> DeadLetter:
        """A dead letter for the record behind event number ``event``."""
        return self.records.dead_letter(int(self.index[event]), reason)


def _strip_logical(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


def _kinds(avro_type: Any) -> set[str]:
    """The primitive kinds a field's type allows (a union gives several)."""
    if isinstance(avro_type, list):
        return set().union(*(_kinds(t) for t in avro_type))
    if isinstance(avro_type, dict):
        return _kinds(avro_type.get("type"))
    return {avro_type} if isinstance(avro_type, str) else set()


@dataclass(frozen=True)
class _Plan:
    schema: Any
    """The writer schema, parsed with logical types off (times stay integers)."""
    missing: str | None
    """Why records of this writer cannot give an event (a field missing or of a wrong kind)."""
    columns: ColumnarReader | None
    """Reads many records of this writer at once (None: one by one, through fastavro)."""


class EventDecoder:
    """Decodes framed records with their writer schema and projects the source's fields.

    Records are read with the writer schema alone, logical types off (the event time stays an
    integer), and projected by name: Avro's record resolution for the primitive fields the
    definitions read, without fastavro's generic resolution (~40 % more per record).
    """

    def __init__(self, store: SchemaStore, source: SourcePlan) -> None:
        """Decode with writer schemas from ``store`` into the fields ``source`` reads."""
        self._store = store
        self._source = source
        self._plans: dict[int, _Plan] = {}
        self._by_header: dict[bytes, _Plan] = {}
        """Plans by the records' 5-byte Confluent header: one dict lookup per record."""
        wanted = {source.entity_field: {"string"}, source.timestamp_field: {"long", "int"}}
        if source.id_field:
            wanted[source.id_field] = {"string"}
        texts = dict(source.texts)
        for name in source.fields:
            wanted[name] = {"string"} if name in texts else _NUMERIC
        self._wanted = wanted

    def _plan(self, schema_id: int) -> _Plan:
        plan = self._plans.get(schema_id)
        if plan is not None:
            return plan
        raw = json.loads(self._store.schema_text(schema_id))
        types = {f["name"]: f["type"] for f in raw.get("fields", [])}
        missing = None
        for name, allowed in self._wanted.items():
            if name not in types:
                missing = f"schema id {schema_id} has no field {name!r}"
                break
            if not (_kinds(types[name]) - {"null"}) <= allowed:
                missing = (
                    f"schema id {schema_id}: field {name!r} is not {'/'.join(sorted(allowed))}"
                )
                break
        plain = _strip_logical(raw)
        columns = None
        if missing is None:
            try:
                columns = ColumnarReader(plain, self._wanted)
            except UnsupportedSchemaError:
                columns = None
        plan = self._plans[schema_id] = _Plan(fastavro.parse_schema(plain), missing, columns)
        return plan

    def columnar(self, schema_id: int) -> ColumnarReader | None:
        """The columnar reader of a writer (None: read its records one by one).

        Raises:
            NotFoundError: the schema id is unknown to the registry.
            BackendUnavailableError: the registry cannot be reached.
        """
        return self._plan(schema_id).columns

    def decode_wire(self, data: bytes) -> dict[str, Any]:
        """The record's fields (event time as integer microseconds).

        Raises:
            SerializationError: bad framing, a body that does not fit its writer schema, or a
                writer without the fields the definitions read.
            NotFoundError: the schema id is unknown to the registry.
            BackendUnavailableError: the registry cannot be reached.
        """
        header = data[:HEADER_SIZE]
        plan = self._by_header.get(header)
        if plan is None:
            plan = self._by_header[header] = self._plan(parse_header(data))
        if plan.missing:
            raise SerializationError(plan.missing)
        try:
            record = schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), plan.schema, None)
        except _DECODE_ERRORS as exc:
            raise SerializationError(
                f"cannot decode a record of schema id {parse_header(data)}: {exc}"
            ) from exc
        if not isinstance(record, dict):
            raise SerializationError(f"schema id {parse_header(data)} does not describe a record")
        return record


@cache
def decoder_for(registry: SchemaRegistrySettings, source: SourcePlan) -> EventDecoder:
    """One decoder per registry, source and process: writer schemas are cached inside it.

    The registry's client sends the configured credentials (basic auth) when there are some;
    its HTTP connections are closed when the process exits.
    """
    store = ConfluentSchemaStore.from_settings(registry)
    atexit.register(store.close)
    return EventDecoder(store, source)


@dataclass
class _Fields:
    """What the step reads of each record, whichever way it was decoded."""

    n: int
    fields: tuple[str, ...]
    buf: npt.NDArray[np.uint8]
    """The records' bytes, one after the other (entity spans point into them)."""
    decoded: npt.NDArray[np.bool_] = field(init=False)
    entity_span: npt.NDArray[np.int64] = field(init=False)
    """(start, end) in :attr:`buf` of the entity of records read many at a time."""
    entity_text_of: dict[int, str | None] = field(init=False)
    """The entity of records read one by one."""
    entity_null: npt.NDArray[np.bool_] = field(init=False)
    event_us: npt.NDArray[np.int64] = field(init=False)
    time_null: npt.NDArray[np.bool_] = field(init=False)
    values: dict[str, npt.NDArray[np.float64]] = field(init=False)
    null: dict[str, npt.NDArray[np.bool_]] = field(init=False)
    ids: npt.NDArray[np.object_] = field(init=False)
    """Event ids (str, or None where null)."""

    def __post_init__(self) -> None:
        n = self.n
        self.decoded = np.zeros(n, dtype=bool)
        self.entity_span = np.zeros((n, 2), dtype=np.int64)
        self.entity_text_of = {}
        self.entity_null = np.zeros(n, dtype=bool)
        self.event_us = np.zeros(n, dtype=np.int64)
        self.time_null = np.zeros(n, dtype=bool)
        self.values = {name: np.zeros(n, dtype=np.float64) for name in self.fields}
        self.null = {name: np.zeros(n, dtype=bool) for name in self.fields}
        self.ids = np.full(n, None, dtype=object)

    def entity_text(self, i: int) -> str | None:
        """The entity of record ``i`` (None: null)."""
        if i in self.entity_text_of:
            return self.entity_text_of[i]
        text = None
        if not self.entity_null[i]:
            a, b = self.entity_span[i].tolist()
            text = self.buf[a:b].tobytes().decode("ascii")  # the reader checked: ASCII
        return text


def decode_records(
    records: KafkaRecords, decoder: EventDecoder, source: SourcePlan
) -> DecodedRecords:
    """Decode records (in log order) keyed by their event's entity.

    A record is dead-lettered when it is empty, not Confluent Avro, of an unknown schema id, of
    a writer without the fields read, keyed by another entity than its own (or not keyed), or
    carries a numeric field that is not finite (a null is kept: aggregations skip it).

    Records are read many at a time (:mod:`processors.avro_columns`); those that reader leaves
    (a corrupt body, text outside ASCII, a writer it does not take) are read one by one.
    """
    reasons: dict[int, str] = {}
    values = records.values
    present = cast("Sequence[bytes]", values) if None not in values else [v or b"" for v in values]
    buf, starts, ends = pack(present)
    got = _Fields(len(records), source.fields, buf)
    one_by_one = _read_columnar(decoder, source, buf, starts, ends, got, reasons)
    _read_one_by_one(records, decoder, source, one_by_one, got, reasons)
    key_code, distinct_keys = pd.factorize(np.asarray(records.keys, dtype=object))
    texts = [bytes(k).decode("utf-8", "replace") for k in distinct_keys]
    _check_keys(got, key_code, list(distinct_keys), texts, reasons)
    for i in np.flatnonzero(got.decoded & got.time_null).tolist():
        reasons.setdefault(i, f"invalid: {source.timestamp_field} is null")
    for name in source.fields:  # a record's first reason is the one given
        bad = ~np.isfinite(got.values[name]) & ~got.null[name] & got.decoded
        for i in np.flatnonzero(bad).tolist():
            reasons.setdefault(i, f"invalid: {name} is {float(got.values[name][i])!r}")
    ok = got.decoded.copy()
    if reasons:
        ok[list(reasons)] = False
    index = np.flatnonzero(ok)
    used, code = np.unique(key_code[index], return_inverse=True)
    events = EventBatch(
        names=[str(texts[c]) for c in used.tolist()],
        code=code.astype(np.int64).reshape(-1),
        event_us=got.event_us[index],
        kafka_ms=records.timestamp_ms[index],
        partition=records.partition[index],
        offset=records.offset[index],
        event_id=_texts(got.ids[index]) if source.id_field else None,
        fields={
            name: np.where(got.null[name][index], np.nan, got.values[name][index])
            for name in source.fields
        },
    )
    dead = [records.dead_letter(i, reasons[i]) for i in sorted(reasons)]
    return DecodedRecords(events, records, dead, index.astype(np.intp))


def _check_keys(
    got: _Fields,
    key_code: npt.NDArray[np.int64],
    distinct_keys: Sequence[bytes],
    texts: list[str],
    reasons: dict[int, str],
) -> None:
    """A decoded record whose key is not its entity (or that has no key) is refused.

    A key is compared as bytes with the entity's UTF-8 text, all records at once: one
    vectorized comparison per byte position of the longest entity.
    """
    kbuf, kstart, kend = pack(distinct_keys or [b""])
    rows = np.flatnonzero(got.decoded)
    code = key_code[rows]
    spans = got.entity_span[rows]
    length = spans[:, 1] - spans[:, 0]
    keyed = code >= 0
    ks = np.where(keyed, kstart[np.maximum(code, 0)], 0)
    same = (
        keyed
        & ~got.entity_null[rows]
        & (length == np.where(keyed, kend[np.maximum(code, 0)] - ks, -1))
    )
    for k in range(int(length[same].max(initial=0))):
        at = np.flatnonzero(same & (length > k))
        same[at] = got.buf[spans[at, 0] + k] == kbuf[ks[at] + k]
    for i, text in got.entity_text_of.items():  # read one by one: compared as text
        j = int(np.searchsorted(rows, i))
        same[j] = key_code[i] >= 0 and text == texts[key_code[i]]
    for j in np.flatnonzero(~same).tolist():
        i = int(rows[j])
        key = texts[key_code[i]] if key_code[i] >= 0 else None
        reasons[i] = f"key-mismatch: record of {got.entity_text(i)!r} keyed {key!r}"


def _read_columnar(
    decoder: EventDecoder,
    source: SourcePlan,
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    got: _Fields,
    reasons: dict[int, str],
) -> npt.NDArray[np.bool_]:
    """Read the records of writers the columnar reader takes; returns those left to read."""
    length = ends - starts
    empty = length == 0
    for i in np.flatnonzero(empty).tolist():
        reasons[i] = "undecodable: empty value"
    head = buf[np.minimum(starts[:, None] + np.arange(HEADER_SIZE), len(buf) - 1)]
    schema_ids = head[:, 1:].astype(np.int64) @ np.array([1 << 24, 1 << 16, 1 << 8, 1])
    framed = (length >= HEADER_SIZE) & (head[:, 0] == 0)
    one_by_one: npt.NDArray[np.bool_] = ~empty & ~framed
    raw = buf.tobytes()
    texts = dict(source.texts)
    for schema_id in np.unique(schema_ids[framed]).tolist():
        rows = np.flatnonzero(framed & (schema_ids == schema_id))
        try:
            reader = decoder.columnar(schema_id)
        except NotFoundError:
            reader = None  # read one by one: the dead letter says why
        if reader is None:
            one_by_one[rows] = True
            continue
        out = reader.read(buf, starts[rows] + HEADER_SIZE, ends[rows])
        one_by_one[rows[out.flagged]] = True
        good = ~out.flagged
        rows = rows[good]
        got.decoded[rows] = True
        entity = out.columns[source.entity_field]
        assert entity.ends is not None
        got.entity_span[rows, 0] = entity.values[good]
        got.entity_span[rows, 1] = entity.ends[good]
        got.entity_null[rows] = entity.null[good]
        when = out.columns[source.timestamp_field]
        got.event_us[rows] = when.values[good]
        got.time_null[rows] |= when.null[good]
        for name in source.fields:
            column = out.columns[name]
            got.null[name][rows] = column.null[good]
            if name in texts:
                got.values[name][rows] = _text_codes(buf, column, good, texts[name])
            else:
                got.values[name][rows] = column.values[good]
        if source.id_field:
            _spans(raw, out.columns[source.id_field], good, rows, got.ids)
    return one_by_one


def _spans(
    raw: bytes, column: Column, good: npt.NDArray[np.bool_], rows: npt.NDArray[np.int64],
    into: npt.NDArray[np.object_],
) -> None:  # fmt: skip
    """Text of a string column (ASCII: the reader checked) at ``rows``; None where null."""
    assert column.ends is not None
    starts, ends = column.values[good].tolist(), column.ends[good].tolist()
    into[rows] = [raw[a:b].decode("ascii") for a, b in zip(starts, ends, strict=True)]
    null = column.null[good]
    if null.any():
        into[rows[null]] = None


def _text_codes(
    buf: npt.NDArray[np.uint8], column: Column, good: npt.NDArray[np.bool_], texts: Sequence[str]
) -> npt.NDArray[np.float64]:
    """A string column's codes among ``texts`` (-1: another text, NaN: null), at ``good``.

    Compared as bytes, all records at once: one vectorized comparison per byte of each text
    (the reader read these records' strings as ASCII: a text with other bytes matches none, as
    :meth:`SourcePlan.text_codes` of their text would say).
    """
    assert column.ends is not None
    starts, length = column.values[good], column.ends[good] - column.values[good]
    codes = np.full(len(starts), -1.0)
    for code, text in enumerate(texts):
        want = np.frombuffer(text.encode(), dtype=np.uint8)
        same = length == len(want)
        for k, byte in enumerate(want.tolist()):
            at = np.flatnonzero(same)
            same[at] = buf[starts[at] + k] == byte
        codes[same] = code
    codes[column.null[good]] = np.nan
    return codes


def _texts(ids: npt.NDArray[np.object_]) -> list[str]:
    """Ids as text (a null id reads "None", as ``str`` gives it)."""
    out: list[str] = ids.tolist()
    if None in out:
        out = [str(x) for x in out]
    return out


def _read_one_by_one(
    records: KafkaRecords,
    decoder: EventDecoder,
    source: SourcePlan,
    which: npt.NDArray[np.bool_],
    got: _Fields,
    reasons: dict[int, str],
) -> None:
    """Read records through fastavro, one at a time (the exact error of a bad one)."""
    texts = dict(source.texts)
    picked = (source.entity_field, source.timestamp_field, *source.fields)
    if source.id_field:
        picked += (source.id_field,)
    pick = operator.itemgetter(*picked)
    for i in np.flatnonzero(which).tolist():
        value = records.values[i]
        assert value is not None
        try:
            row = pick(decoder.decode_wire(bytes(value)))
        except (ValidationError, NotFoundError) as exc:
            reasons[i] = f"undecodable: {exc}"
            continue
        got.decoded[i] = True
        got.entity_text_of[i] = row[0]
        got.time_null[i] = row[1] is None
        got.event_us[i] = 0 if row[1] is None else int(row[1])
        for j, name in enumerate(source.fields):
            v = row[2 + j]
            got.null[name][i] = v is None
            if name in texts:
                got.values[name][i] = source.text_codes(name, [v])[0]
            else:
                got.values[name][i] = 0.0 if v is None else float(v)
        if source.id_field:
            got.ids[i] = row[-1]
