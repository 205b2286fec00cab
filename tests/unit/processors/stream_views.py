"""Stream definitions for the engine's and the oracle's tests, with what they never vary fixed.

The ``trades`` topic keyed by ``symbol`` with event time ``ts``; views of that entity without a
TTL, over an offline table ``t`` that no test reads, whose features are exactly their
computation's outputs (the aggregations', then the derived ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from featurestore.definitions.model import Feature
from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import SourceTable
from featurestore.definitions.model import StreamComputation
from featurestore.definitions.model import StreamSource


def trades_source(
    lateness: timedelta, id_field: str | None = None, columns: Mapping[str, str] | None = None
) -> StreamSource:
    """The trades stream, ``lateness`` its watermark delay, ``columns`` its computed columns."""
    return StreamSource(
        name="trades",
        topic="trades",
        timestamp_field="ts",
        entity_field="symbol",
        watermark_delay=lateness,
        id_field=id_field,
        columns=dict(columns or {}),
    )


def stream_view(name: str, stream: StreamComputation) -> FeatureView:
    """The view ``name`` that ``stream`` computes, per symbol."""
    outputs = [*(a.name for a in stream.aggregations), *stream.derived]
    return FeatureView(
        name=name,
        entities=("symbol",),
        features=tuple(Feature(n) for n in outputs),
        ttl=timedelta(0),
        source=SourceTable("t"),
        stream=stream,
    )
