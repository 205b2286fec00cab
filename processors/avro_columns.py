"""Avro bodies of one writer schema, decoded many at a time into numpy columns.

Why: read record by record from Python, fastavro is the largest part of a processor's step (figures
in ``bench/RESULTS.md``). Avro's binary encoding of a record is its fields' encodings one after the
other, so a batch of bodies can be read field by field with every record's read position in one
array: each field is one vectorized read over all the records (a varint, the 8 bytes of a double, a
length-prefixed string skipped). Only the top-level fields asked for are kept.

A record this reader cannot vouch for is *flagged* instead of read: it runs past its end or
stops before it, a union branch or an enum index is out of range, a varint runs over 10 bytes,
a block count is larger than its bytes allow, or a string holds a byte outside ASCII (whose
UTF-8 check is left to fastavro). The caller decodes flagged records one by one with fastavro,
which gives the exact error; so for every record not flagged the columns hold fastavro's values.
Schemas this reader does not take (recursive types, items of zero bytes) raise
:class:`UnsupportedSchemaError` and are read record by record.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["AvroColumns", "Column", "ColumnarReader", "UnsupportedSchemaError"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_WIDTH = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_K10 = np.arange(10, dtype=np.int64)
_SHIFTS = (7 * np.arange(10, dtype=np.uint64)).astype(np.uint64)
_PAD = 16


class UnsupportedSchemaError(ValueError):
    """A writer schema the columnar reader does not take; read its records one by one."""


@dataclass(frozen=True)
class _Node:
    kind: str
    """An Avro primitive, or record, enum, fixed, array, map, union."""
    size: int = 0
    """Fixed: its bytes; enum: its symbols."""
    children: tuple[_Node, ...] = ()
    """Record: its fields' types; array, map: the item or value type; union: the branches."""
    names: tuple[str, ...] = ()
    """Record: its fields' names."""


def _compile(schema: Any, named: dict[str, _Node | None], namespace: str = "") -> _Node:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _Node(schema)
        full = schema if "." in schema else f"{namespace}.{schema}" if namespace else schema
        found = named.get(full, named.get(schema, _MISSING))
        if found is _MISSING:
            raise UnsupportedSchemaError(f"unknown type name {schema!r}")
        if found is None:
            raise UnsupportedSchemaError(f"recursive type {schema!r}")
        return found
    if isinstance(schema, list):
        return _Node("union", children=tuple(_compile(s, named, namespace) for s in schema))
    if not isinstance(schema, dict):
        raise UnsupportedSchemaError(f"not an Avro type: {schema!r}")
    kind = schema.get("type")
    if kind in _PRIMITIVES:
        return _Node(kind)
    if kind == "array":
        item = _compile(schema["items"], named, namespace)
        if _min_width(item) == 0:
            raise UnsupportedSchemaError("an array of items of zero bytes")
        return _Node("array", children=(item,))
    if kind == "map":
        return _Node("map", children=(_compile(schema["values"], named, namespace),))
    name = str(schema.get("name", ""))
    space = str(schema.get("namespace", namespace if "." not in name else ""))
    if "." in name:
        space = name.rsplit(".", 1)[0]
    full = name if "." in name or not space else f"{space}.{name}"
    if kind == "enum":
        node = _Node("enum", size=len(schema["symbols"]))
    elif kind == "fixed":
        node = _Node("fixed", size=int(schema["size"]))
    elif kind == "record" or kind == "error":
        named[full] = named[name] = None  # being compiled: a reference to it is recursive
        fields = schema.get("fields", [])
        node = _Node(
            "record",
            children=tuple(_compile(f["type"], named, space) for f in fields),
            names=tuple(str(f["name"]) for f in fields),
        )
    else:
        raise UnsupportedSchemaError(f"not an Avro type: {schema!r}")
    named[full] = named[name] = node
    return node


_MISSING = _Node("missing")


def _min_width(node: _Node) -> int:
    if node.kind in _WIDTH:
        return _WIDTH[node.kind]
    if node.kind == "fixed":
        return node.size
    if node.kind == "record":
        return sum(_min_width(c) for c in node.children)
    if node.kind == "union":
        return 1
    return 1  # int, long, strings, enum, array, map: at least one varint byte


@dataclass
class Column:
    """One top-level field of every record: numbers, or string spans into the buffer."""

    values: npt.NDArray[Any]
    """Numbers (int64 for int/long, float64 otherwise), or string starts for strings."""
    ends: I64 | None
    """String ends (exclusive); None for numbers."""
    null: Mask
    """Records whose value is null (a union's null branch)."""


@dataclass
class AvroColumns:
    """What :meth:`ColumnarReader.read` decoded."""

    columns: dict[str, Column]
    flagged: Mask
    """Records to decode one by one (see the module's docstring); their columns are garbage."""
    buffer: U8


class _Cursor:
    """Every record's read position, and which records are flagged.

    Each read takes the rows to read at and returns those still good (in the same order) with
    their values; a row flagged is dropped from every later read.
    """

    def __init__(self, buf: U8, starts: I64, ends: I64) -> None:
        self.buf = buf
        self.limit = len(buf) - 1
        self.pos = starts.copy()
        self.end = ends
        self.flagged = np.zeros(len(starts), dtype=bool)
        self._high: npt.NDArray[np.int32] | None = None

    def keep(self, rows: I64, bad: Mask | None = None) -> Mask:
        """Flag the rows that are ``bad`` or past their record's end; the others' mask."""
        ok = self.pos[rows] <= self.end[rows]
        if bad is not None:
            ok &= ~bad
        if not ok.all():
            self.flagged[rows[~ok]] = True
        return ok

    def gather(self, rows: I64, width: int) -> U8:
        at = np.minimum(self.pos[rows][:, None] + np.arange(width, dtype=np.int64), self.limit)
        out: U8 = self.buf[at]
        return out

    def varint(self, rows: I64) -> tuple[I64, I64]:
        """Zigzag varints (int, long) at the rows' positions."""
        first = self.buf[np.minimum(self.pos[rows], self.limit)]
        raw = first.astype(np.uint64)
        length = np.ones(len(rows), dtype=np.int64)
        bad = np.zeros(len(rows), dtype=bool)
        multi = np.flatnonzero(first >= 0x80)
        if len(multi):
            b = self.gather(rows[multi], 10)
            stop = b < 0x80
            bad[multi] = ~stop.any(axis=1)
            n = np.argmax(stop, axis=1) + 1
            parts = (b & 0x7F).astype(np.uint64) << _SHIFTS
            parts[_K10[None, :] >= n[:, None]] = 0
            raw[multi] = np.bitwise_or.reduce(parts, axis=1)
            length[multi] = n
        self.pos[rows] += length
        value = (raw >> np.uint64(1)).view(np.int64) ^ -(raw & np.uint64(1)).view(np.int64)
        ok = self.keep(rows, bad)
        return rows[ok], value[ok]

    def fixed_width(self, rows: I64, kind: str) -> tuple[I64, F64]:
        """Booleans, floats and doubles at the rows' positions (as float64)."""
        width = _WIDTH[kind]
        bad = None
        if kind == "boolean":
            values = self.buf[np.minimum(self.pos[rows], self.limit)].astype(np.float64)
            bad = values > 1
        else:
            b = np.ascontiguousarray(self.gather(rows, width))
            with np.errstate(invalid="ignore"):  # (a NaN of float32 widened)
                values = b.view("<f8" if width == 8 else "<f4").ravel().astype(np.float64)
        self.pos[rows] += width
        ok = self.keep(rows, bad)
        return rows[ok], values[ok]

    def span(self, rows: I64, *, text: bool) -> tuple[I64, I64]:
        """Length-prefixed strings or bytes: their starts (each ends at the new position)."""
        rows, length = self.varint(rows)
        starts = self.pos[rows].copy()
        bad = (length < 0) | (length > self.end[rows] - starts)
        self.pos[rows] += np.where(bad, 0, length)  # (a corrupt length must not wrap around)
        if text:
            high = self.high()
            stops = np.minimum(self.pos[rows], self.limit)
            bad |= high[stops] != high[np.minimum(starts, self.limit)]
        ok = self.keep(rows, bad)
        return rows[ok], starts[ok]

    def high(self) -> npt.NDArray[np.int32]:
        """Running count of bytes >= 0x80 before each position (the ASCII check of strings)."""
        if self._high is None:
            self._high = np.concatenate(([0], np.cumsum(self.buf >= 0x80, dtype=np.int32)))
        return self._high


def _skip(cur: _Cursor, node: _Node, rows: I64) -> I64:
    """Read past one value of ``node`` at each row; returns the rows still good."""
    kind = node.kind
    if not len(rows) or kind == "null":
        return rows
    if kind in ("int", "long"):
        return cur.varint(rows)[0]
    if kind in _WIDTH:
        return cur.fixed_width(rows, kind)[0]
    if kind in ("string", "bytes"):
        return cur.span(rows, text=kind == "string")[0]
    if kind == "fixed":
        cur.pos[rows] += node.size
        return rows[cur.keep(rows)]
    if kind == "enum":
        rows, index = cur.varint(rows)
        return rows[cur.keep(rows, (index < 0) | (index >= node.size))]
    if kind == "record":
        for child in node.children:
            rows = _skip(cur, child, rows)
        return rows
    if kind == "union":
        rows, branch = _branches(cur, node, rows)
        kept = [_skip(cur, child, rows[branch == k]) for k, child in enumerate(node.children)]
        return np.sort(np.concatenate(kept))
    if kind in ("array", "map"):
        return _blocks(cur, node, rows)
    raise UnsupportedSchemaError(f"type {kind}")


def _branches(cur: _Cursor, node: _Node, rows: I64) -> tuple[I64, I64]:
    """A union's branch index at each row."""
    rows, branch = cur.varint(rows)
    ok = cur.keep(rows, (branch < 0) | (branch >= len(node.children)))
    return rows[ok], branch[ok]


def _blocks(cur: _Cursor, node: _Node, rows: I64) -> I64:
    """Arrays and maps: blocks of items, until a block of count 0."""
    done: list[I64] = [rows[:0]]
    active = rows
    while len(active):
        active, count = cur.varint(active)
        negative = np.flatnonzero(count < 0)
        if len(negative):  # a negative count is followed by the block's size in bytes
            cur.varint(active[negative])  # (flags what it cannot read)
            count = np.abs(count)
            ok = ~cur.flagged[active]
            active, count = active[ok], count[ok]
        ended = count == 0
        done.append(active[ended])
        active, count = active[~ended], count[~ended]
        # Every item takes at least one byte: a count beyond the record's bytes is corrupt.
        ok = cur.keep(active, count > cur.end[active] - cur.pos[active])
        active, count = active[ok], count[ok]
        items, remaining = active, count
        while len(items):
            if node.kind == "map":
                good = _skip(cur, node.children[0], cur.span(items, text=True)[0])
            else:
                good = _skip(cur, node.children[0], items)
            still = np.isin(items, good, assume_unique=True)
            items, remaining = items[still], remaining[still] - 1
            more = remaining > 0
            items, remaining = items[more], remaining[more]
        active = active[~cur.flagged[active]]
    return np.sort(np.concatenate(done))


class ColumnarReader:
    """Reads many bodies of one writer schema into columns of chosen top-level fields."""

    def __init__(self, writer_schema: Mapping[str, Any], wanted: Iterable[str]) -> None:
        """``writer_schema`` as JSON (logical types are ignored: times stay integers).

        Raises:
            UnsupportedSchemaError: not a record, or types this reader does not take.
        """
        node = _compile(dict(writer_schema), {})
        if node.kind != "record":
            raise UnsupportedSchemaError("the writer schema is not a record")
        self._node = node
        wanted = set(wanted)
        self._wanted = {
            name
            for name, child in zip(node.names, node.children, strict=True)
            if name in wanted and _leaf_kinds(child) <= _PRIMITIVES
        }
        """Fields kept as columns: those asked for whose values are primitives (or null)."""

    def read(self, buf: U8, starts: I64, ends: I64) -> AvroColumns:
        """Decode the bodies ``buf[starts[i]:ends[i]]``.

        ``buf`` must be followed by at least 16 bytes that belong to no body (reads of a
        corrupt record may run into them; they are never part of a result).
        """
        cur = _Cursor(buf, np.asarray(starts, np.int64), np.asarray(ends, np.int64))
        n = len(starts)
        rows = np.arange(n, dtype=np.int64)
        columns: dict[str, Column] = {}
        for name, child in zip(self._node.names, self._node.children, strict=True):
            if name in self._wanted:
                rows, columns[name] = _capture(cur, child, rows, n)
            else:
                rows = _skip(cur, child, rows)
        cur.keep(rows, cur.pos[rows] != cur.end[rows])
        return AvroColumns(columns, cur.flagged, buf)


def _capture(cur: _Cursor, node: _Node, rows: I64, n: int) -> tuple[I64, Column]:
    """Read one top-level field, keeping its values (numbers, or string spans)."""
    kinds = _leaf_kinds(node)
    text = bool(kinds & {"string", "bytes"})
    integers = text or kinds <= {"int", "long", "null"}
    values: npt.NDArray[Any] = np.zeros(n, dtype=np.int64 if integers else np.float64)
    ends = np.zeros(n, dtype=np.int64) if text else None
    null = np.zeros(n, dtype=bool)
    if node.kind == "union":
        rows, branch = _branches(cur, node, rows)
        kept: list[I64] = []
        for k, child in enumerate(node.children):
            part = rows[branch == k]
            if child.kind == "null":
                null[part] = True
                kept.append(part)
            else:
                kept.append(_leaf(cur, child, part, values, ends))
        rows = np.sort(np.concatenate(kept)) if kept else rows
    else:
        rows = _leaf(cur, node, rows, values, ends)
    return rows, Column(values, ends, null)


def _leaf_kinds(node: _Node) -> set[str]:
    if node.kind == "union":
        return {c.kind for c in node.children}
    return {node.kind}


def _leaf(cur: _Cursor, node: _Node, rows: I64, values: npt.NDArray[Any], ends: I64 | None) -> I64:
    kind = node.kind
    if kind in ("int", "long"):
        rows, got = cur.varint(rows)
        values[rows] = got
    elif kind in ("float", "double", "boolean"):
        rows, fl = cur.fixed_width(rows, kind)
        values[rows] = fl
    elif kind in ("string", "bytes") and ends is not None:
        rows, begin = cur.span(rows, text=kind == "string")
        values[rows] = begin
        ends[rows] = cur.pos[rows]
    else:
        return _skip(cur, node, rows)  # null
    return rows


def pack(values: Iterable[bytes], skip: int = 0) -> tuple[U8, I64, I64]:
    """Concatenate ``values`` (dropping ``skip`` leading bytes of each) for :meth:`read`."""
    chunks = list(values)
    lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
    buf = np.frombuffer(b"".join(chunks) + bytes(_PAD), dtype=np.uint8)
    ends = np.cumsum(lengths)
    starts = ends - lengths + skip
    return buf, starts, ends
