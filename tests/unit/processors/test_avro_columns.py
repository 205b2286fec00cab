"""The columnar Avro reader against fastavro: the same values, or the record flagged.

For every record the reader does not flag, fastavro decodes it to the same values; valid
records of ASCII strings are never flagged; corrupt ones (cut short, bytes flipped, bytes added)
are either flagged or decode, in fastavro too, to the same values.
"""

from __future__ import annotations

import io
import json
import math
import random
from typing import Any

import fastavro
import numpy as np
import pytest

from featurestore.events.schemas import ANOMALY
from featurestore.events.schemas import METRIC
from featurestore.events.schemas import PREDICTION_LOG
from featurestore.events.schemas import QUOTE
from featurestore.events.schemas import TRADE
from featurestore.events.schemas import bundled_schema
from processors.avro_columns import ColumnarReader
from processors.avro_columns import UnsupportedSchemaError
from processors.avro_columns import pack
from processors.decode import _strip_logical  # the decoder's own (logical types off)

KITCHEN_SINK = {
    "type": "record",
    "name": "Sink",
    "namespace": "t",
    "fields": [
        {"name": "key", "type": "string"},
        {"name": "maybe_long", "type": ["null", "long"]},
        {"name": "maybe_double", "type": ["double", "null"]},
        {"name": "num", "type": ["null", "int", "double"]},
        {"name": "flag", "type": "boolean"},
        {"name": "f32", "type": "float"},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["R", "G", "B"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {
            "name": "inner",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "bytes"}],
            },
        },
        {"name": "again", "type": "Inner"},
        {"name": "tags", "type": {"type": "map", "values": "string"}},
        {"name": "nested", "type": {"type": "array", "items": {"type": "array", "items": "long"}}},
        {"name": "colours", "type": {"type": "array", "items": "t.Colour"}},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


def _text(rng: random.Random) -> str:
    return "".join(rng.choice("ABCXYZ.-_0123456789") for _ in range(rng.randrange(0, 12)))


def _value(schema: Any, rng: random.Random, named: dict[str, Any]) -> Any:
    if isinstance(schema, list):
        return _value(rng.choice(schema), rng, named)
    if isinstance(schema, str) and schema in named:
        return _value(named[schema], rng, named)
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(schema, dict) and kind in ("record", "enum", "fixed"):
        named[schema["name"]] = named[f"t.{schema['name']}"] = schema
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("int", "long"):
        big = 2**31 - 1 if kind == "int" else 2**63 - 1
        return rng.choice([0, -1, 1, 63, -64, 64, 300, -(big + 1), big, rng.randrange(-big, big)])
    if kind == "float":
        return rng.choice([0.0, 1.5, -2.25, math.inf, rng.uniform(-1e6, 1e6)])
    if kind == "double":
        return rng.choice([0.0, -0.0, 1e-300, math.inf, -math.inf, math.nan, rng.gauss(0, 1e9)])
    if kind == "string":
        return _text(rng)
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 6)))
    if kind == "enum":
        return rng.choice(schema["symbols"])
    if kind == "fixed":
        return bytes(rng.randrange(256) for _ in range(schema["size"]))
    if kind == "array":
        return [_value(schema["items"], rng, named) for _ in range(rng.choice([0, 0, 1, 3, 40]))]
    if kind == "map":
        return {_text(rng): _value(schema["values"], rng, named) for _ in range(rng.randrange(4))}
    if kind == "record":
        return {f["name"]: _value(f["type"], rng, named) for f in schema["fields"]}
    raise AssertionError(kind)


def _encode(parsed: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b)


def _check(schema: dict[str, Any], bodies: list[bytes], *, all_valid: bool) -> int:
    """Compare every top-level primitive field with fastavro; returns how many were flagged."""
    plain = _strip_logical(schema)
    parsed = fastavro.parse_schema(plain)
    wanted = [f["name"] for f in plain["fields"]]
    reader = ColumnarReader(plain, wanted)
    buf, starts, ends = pack(bodies)
    got = reader.read(buf, starts, ends)
    raw = buf.tobytes()
    for i, body in enumerate(bodies):
        try:
            expected = fastavro.schemaless_reader(io.BytesIO(body), parsed, None)
            assert isinstance(expected, dict)
        except Exception:  # any failure of fastavro must be flagged
            assert got.flagged[i], f"record {i} does not decode in fastavro but was not flagged"
            continue
        if got.flagged[i]:
            assert not all_valid, f"valid record {i} flagged: {body!r}"
            continue
        for name in wanted:
            if name not in got.columns:
                continue
            column = got.columns[name]
            value = expected[name]
            if column.null[i]:
                assert value is None, (i, name, value)
            elif column.ends is not None:
                span = raw[column.values[i] : column.ends[i]]
                assert span == (value.encode() if isinstance(value, str) else value), (i, name)
            else:
                assert _same(float(column.values[i]), float(value)), (i, name, value)
                if column.values.dtype == np.int64:
                    assert int(column.values[i]) == value, (i, name, value)
    return int(got.flagged.sum())


def _schemas() -> list[dict[str, Any]]:
    kinds = (TRADE, QUOTE, METRIC, ANOMALY, PREDICTION_LOG)
    bundled = [json.loads(bundled_schema(kind).text) for kind in kinds]
    return [KITCHEN_SINK, *bundled]


@pytest.mark.parametrize("schema", _schemas(), ids=lambda s: s["name"])
def test_valid_records_read_as_fastavro_reads_them(schema: dict[str, Any]) -> None:
    rng = random.Random(7)
    parsed = fastavro.parse_schema(_strip_logical(schema))
    bodies = [_encode(parsed, _value(schema, rng, {})) for _ in range(400)]
    try:
        assert _check(schema, bodies, all_valid=True) == 0
    except UnsupportedSchemaError as exc:  # pragma: no cover - every schema here is taken
        pytest.fail(str(exc))


@pytest.mark.parametrize("schema", _schemas(), ids=lambda s: s["name"])
def test_corrupt_records_are_flagged_or_read_as_fastavro_reads_them(
    schema: dict[str, Any],
) -> None:
    rng = random.Random(11)
    parsed = fastavro.parse_schema(_strip_logical(schema))
    bodies = []
    for _ in range(600):
        body = bytearray(_encode(parsed, _value(schema, rng, {})))
        how = rng.randrange(4)
        if how == 0 and body:
            del body[rng.randrange(len(body)) :]
        elif how == 1 and body:
            for _ in range(rng.randrange(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif how == 2:
            body += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
        else:
            body[rng.randrange(len(body) + 1) : 0] = bytes([rng.randrange(256)])
        bodies.append(bytes(body))
    assert _check(schema, bodies, all_valid=False) > 0


def test_negative_block_counts_and_non_ascii_text() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "xs", "type": {"type": "array", "items": "long"}},
            {"name": "s", "type": "string"},
            {"name": "n", "type": "long"},
        ],
    }
    # xs = [1, 2] as one block of count -2 with its byte size (2), then the end block.
    sized = bytes([3, 4, 2, 4, 0]) + bytes([2]) + b"A" + bytes([10])
    accented = bytes([0]) + bytes([4]) + "é".encode() + bytes([10])
    _check(schema, [sized, accented], all_valid=False)
    got = ColumnarReader(schema, ["n"]).read(*pack([sized, accented]))
    assert got.flagged.tolist() == [False, True]  # non-ASCII text is left to fastavro
    assert int(got.columns["n"].values[0]) == 5


def test_recursive_schemas_are_refused() -> None:
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    with pytest.raises(UnsupportedSchemaError, match="recursive"):
        ColumnarReader(schema, ["next"])
