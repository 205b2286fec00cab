"""The Avro schemas of the event log, loaded once from the ``.avsc`` files beside this module.

A schema is kept in three forms: its JSON text (what the registry stores), the parsed dict
(what fastavro reads and writes with; parsing is the expensive step, so it happens once), and
its full name (``featurestore.v1.Trade``), which ties it to a domain type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException
from fastavro.schema import UnknownType

from featurestore.errors import SchemaError

__all__ = [
    "ANOMALY",
    "METRIC",
    "PREDICTION_LOG",
    "QUOTE",
    "TRADE",
    "AvroSchema",
    "bundled_schema",
    "parse_schema_text",
]

ANOMALY = "anomaly"
METRIC = "metric"
PREDICTION_LOG = "prediction_log"
QUOTE = "quote"
TRADE = "trade"


@dataclass(frozen=True, slots=True, eq=False)
class AvroSchema:
    """One parsed Avro record schema."""

    full_name: str
    """Namespace-qualified record name, e.g. ``featurestore.v1.Trade``."""
    text: str
    """Canonical JSON text, as registered with the schema registry."""
    parsed: Any
    """fastavro's parsed form, reused for every record."""


def parse_schema_text(text: str) -> AvroSchema:
    """Parse Avro schema JSON text.

    Raises:
        SchemaError: the text is not JSON or not a valid Avro record schema.

    """
    try:
        raw = json.loads(text)
        parsed = fastavro.parse_schema(raw)
    except (ValueError, SchemaParseException, UnknownType) as exc:
        raise SchemaError(f"invalid Avro schema: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaError("an event schema must be an Avro record")
    return AvroSchema(
        full_name=str(parsed["name"]),
        text=json.dumps(raw, separators=(",", ":"), sort_keys=True),
        parsed=parsed,
    )


@cache
def bundled_schema(name: str) -> AvroSchema:
    """Return the bundled schema ``schemas/<name>.avsc`` (``trade``, ``anomaly``, ...).

    Raises:
        SchemaError: no such schema file.

    """
    path = resources.files(__package__).joinpath("schemas", f"{name}.avsc")
    if not path.is_file():
        raise SchemaError(f"no bundled schema named {name!r}")
    return parse_schema_text(path.read_text(encoding="utf-8"))
