"""Kafka records -> the state machine's trades (with their symbols), or dead letters with a reason.

Each record is decoded with its own writer schema (by the id in its Confluent header, fetched
once per id from the registry) into the processor's reader schema: the fields of ``Trade`` the
features use. So a topic holding several versions of ``Trade`` is read correctly, and a record
that cannot be decoded, or is not a usable trade, is dead-lettered instead of stopping the job.
An unreachable registry is not the record's fault: that error propagates and fails the batch,
which Spark retries from its checkpoint.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import fastavro
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from fastavro import schemaless_reader
from fastavro.read import SchemaResolutionError

from featurestore.errors import NotFoundError, ValidationError
from featurestore.events import AvroDeserializer, ConfluentSchemaStore, SchemaStore
from featurestore.events.schemas import AvroSchema, parse_schema_text
from featurestore.events.wire import HEADER_SIZE, SerializationError, parse_header
from processors.core import TradeBatch

__all__ = [
    "READER_SCHEMA",
    "DeadLetter",
    "DecodedRecords",
    "KafkaRecords",
    "TradeDecoder",
    "decode_records",
    "decoder_for",
]

READER_SCHEMA: AvroSchema = parse_schema_text(
    json.dumps(
        {
            "type": "record",
            "name": "Trade",
            "namespace": "featurestore.v1",
            "fields": [
                {"name": "symbol", "type": "string"},
                {"name": "price", "type": "double"},
                {"name": "size", "type": "long"},
                {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "trade_id", "type": "string"},
            ],
        }
    )
)
"""What the processors read of a Trade; writer fields beyond these are skipped by resolution."""

_DECODE_ERRORS = (SchemaResolutionError, EOFError, ValueError, TypeError, IndexError, KeyError)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class DeadLetter:
    """A record the processors could not use, with why."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int
    reason: str


@dataclass(frozen=True)
class KafkaRecords:
    """Kafka records as columns, in log order: (partition, offset)."""

    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]
    partition: npt.NDArray[np.int64]
    offset: npt.NDArray[np.int64]
    timestamp_ms: npt.NDArray[np.int64]

    def __len__(self) -> int:
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
    """The usable trades of some records, in log order, and the others."""

    trades: TradeBatch
    symbols: list[str]
    """The symbol of each trade of :attr:`trades`."""
    records: KafkaRecords
    dead: list[DeadLetter] = field(default_factory=list)
    index: npt.NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))
    """Position in :attr:`records` of each trade of :attr:`trades`."""

    def dead_letter(self, trade: int, reason: str) -> DeadLetter:
        """A dead letter for the record behind trade number ``trade``."""
        return self.records.dead_letter(int(self.index[trade]), reason)

    def by_symbol(self) -> dict[str, npt.NDArray[np.intp]]:
        """Positions in :attr:`trades` of each symbol's trades, in log order."""
        positions: dict[str, list[int]] = {}
        for i, symbol in enumerate(self.symbols):
            positions.setdefault(symbol, []).append(i)
        return {s: np.asarray(p, dtype=np.intp) for s, p in positions.items()}


_PROMOTIONS = {
    "string": {"string"},
    "double": {"double", "float", "long", "int"},
    "long": {"long", "int"},
}


def _strip_logical(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


class TradeDecoder:
    """Decodes framed records with their writer schema into :data:`READER_SCHEMA`.

    For a writer whose reader fields are all plain primitives (every Trade version so far),
    records are read with the writer schema alone, logical types off (event_time stays integer
    microseconds), and projected onto the reader's fields by name: Avro's record resolution for
    such fields, without fastavro's generic resolution, which costs ~40 % more per record. Any
    other writer goes through fastavro's resolution (:class:`AvroDeserializer`).
    """

    def __init__(self, store: SchemaStore) -> None:
        self._generic = AvroDeserializer(store, READER_SCHEMA)
        self._plans: dict[int, Any] = {}
        self._fields = [(f["name"], f["type"]) for f in json.loads(READER_SCHEMA.text)["fields"]]

    def _plan(self, schema_id: int) -> Any:
        """The plain writer schema of an id, or None when it needs generic resolution."""
        if schema_id in self._plans:
            return self._plans[schema_id]
        writer = self._generic.writer_schema(schema_id)
        raw = json.loads(writer.text)
        types = {f["name"]: f["type"] for f in raw.get("fields", [])}
        plain = writer.full_name == READER_SCHEMA.full_name
        for name, reader_type in self._fields:
            kind = reader_type["type"] if isinstance(reader_type, dict) else reader_type
            wtype = types.get(name)
            wkind = wtype.get("type") if isinstance(wtype, dict) else wtype
            plain = plain and isinstance(wkind, str) and wkind in _PROMOTIONS[kind]
        plan = fastavro.parse_schema(_strip_logical(raw)) if plain else None
        self._plans[schema_id] = plan
        return plan

    def decode_wire(self, data: bytes) -> tuple[int, dict[str, Any]]:
        """The schema id and the reader-shaped dict of a framed record.

        Raises:
            SerializationError: bad framing or a body that does not fit its writer schema.
            NotFoundError: the schema id is unknown to the registry.
            BackendUnavailableError: the registry cannot be reached.
        """
        schema_id = parse_header(data)
        plan = self._plan(schema_id)
        if plan is None:
            return self._generic.decode_wire(data)
        try:
            record = schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), plan, None)
        except _DECODE_ERRORS as exc:
            raise SerializationError(
                f"cannot decode a record of schema id {schema_id}: {exc}"
            ) from exc
        if not isinstance(record, dict):
            raise SerializationError(f"schema id {schema_id} does not describe a record")
        return schema_id, {name: record[name] for name, _ in self._fields}


@cache
def decoder_for(registry_url: str) -> TradeDecoder:
    """One decoder per registry and process: writer schemas are cached by id inside it."""
    return TradeDecoder(ConfluentSchemaStore(registry_url))


def _micros(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MICRO
    return int(value)


def decode_records(
    records: KafkaRecords, decoder: TradeDecoder | AvroDeserializer
) -> DecodedRecords:
    """Decode records (in log order) whose key is their trade's symbol.

    A record is dead-lettered when it is empty, not Confluent Avro, of an unknown schema id,
    not resolvable into the reader schema, keyed by another symbol than its own (or not keyed),
    or not a valid trade (price not finite and positive, negative size).
    """
    keep: list[int] = []
    symbols: list[str] = []
    event_us: list[int] = []
    price: list[float] = []
    size: list[float] = []
    ids: list[str] = []
    dead: list[DeadLetter] = []
    key_text: dict[bytes, str] = {}
    for i, value in enumerate(records.values):
        if value is None or len(value) == 0:
            dead.append(records.dead_letter(i, "undecodable: empty value"))
            continue
        try:
            _, record = decoder.decode_wire(bytes(value))
        except (ValidationError, NotFoundError) as exc:
            dead.append(records.dead_letter(i, f"undecodable: {exc}"))
            continue
        key = records.keys[i]
        symbol = None
        if key is not None:
            symbol = key_text.get(key)
            if symbol is None:
                symbol = key_text[key] = bytes(key).decode("utf-8", "replace")
        if symbol is None or record["symbol"] != symbol:
            reason = f"key-mismatch: record of {record['symbol']!r} keyed {symbol!r}"
            dead.append(records.dead_letter(i, reason))
            continue
        p, s = record["price"], record["size"]
        if not (math.isfinite(p) and p > 0) or s < 0:
            dead.append(records.dead_letter(i, f"invalid: price {p!r}, size {s!r}"))
            continue
        keep.append(i)
        symbols.append(symbol)
        event_us.append(_micros(record["event_time"]))
        price.append(p)
        size.append(float(s))
        ids.append(record["trade_id"])
    index = np.asarray(keep, dtype=np.intp)
    batch = TradeBatch(
        event_us=np.asarray(event_us, dtype=np.int64),
        price=np.asarray(price, dtype=np.float64),
        size=np.asarray(size, dtype=np.float64),
        kafka_ms=records.timestamp_ms[index],
        partition=records.partition[index],
        offset=records.offset[index],
        trade_id=ids,
    )
    return DecodedRecords(batch, symbols, records, dead, index)
