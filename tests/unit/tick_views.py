"""One stream view over a ``ticks`` topic, for the tests of what a join key and a source may be.

The view ``w`` counts ``x`` per minute into the Int64 feature ``n``, by the entity ``key`` (the
event's ``key`` field, event time ``ts``), over an offline table ``t_w`` that no test reads. The
tests vary what they are about: the source's Avro fields, its id field, the join key's type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from featurestore.definitions import AggFunction
from featurestore.definitions import Aggregation
from featurestore.definitions import Definitions
from featurestore.definitions import Entity
from featurestore.definitions import Feature
from featurestore.definitions import FeatureView
from featurestore.definitions import SourceTable
from featurestore.definitions import StreamComputation
from featurestore.definitions import StreamSource
from featurestore.definitions import ValueType

TIMESTAMP_MICROS = {"type": "long", "logicalType": "timestamp-micros"}
TICK_FIELDS: Mapping[str, Any] = {"key": "string", "ts": TIMESTAMP_MICROS, "x": "double"}
"""The fields the view reads, each of the type the processors decode it from."""


def tick_count_definitions(
    fields: Mapping[str, Any] = TICK_FIELDS,
    *,
    id_field: str | None = None,
    key_type: ValueType = ValueType.STRING,
) -> Definitions:
    """Project ``p``: the view ``w`` over a ``Tick`` record of ``fields`` (name -> Avro type)."""
    schema = json.dumps(
        {
            "type": "record",
            "name": "Tick",
            "fields": [{"name": n, "type": t} for n, t in fields.items()],
        }
    )
    minute = timedelta(minutes=1)
    source = StreamSource("ticks", "ticks", "ts", "key", timedelta(0), id_field, avro_schema=schema)
    view = FeatureView(
        "w",
        ("key",),
        (Feature("n", ValueType.INT64),),
        timedelta(0),
        SourceTable("t_w"),
        stream=StreamComputation(
            source, (Aggregation("x", AggFunction.COUNT, minute, minute, "n"),), tile=minute
        ),
    )
    return Definitions("p", (Entity("key", "key", key_type),), (view,), ())
