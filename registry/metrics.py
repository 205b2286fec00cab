"""The metrics topic and the view computed from it: rolling statistics of each entity's values.

Shaped like ``trades.py`` (one ``KafkaSource`` per view, ``featurestore.*`` tags for what Feast
has no field for; ``README.md`` says why). Metric events are keyed by their entity in Kafka,
and the view by the ``metric_entity`` entity (join key ``entity``). A Metric also carries a
``name``; the view does not read it: its values are every observation of the entity, whatever
the metric's name (one view over all names; ``README.md`` says how to keep names apart).
"""

from __future__ import annotations

import json

from entities import metric_entity
from feast import Field
from feast import KafkaSource
from feast.types import Float64
from feast.types import Int64
from feast.types import String
from streams import SETTINGS
from streams import minute_view
from streams import per_minute
from streams import stream_source

METRIC_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Metric",
        "namespace": "featurestore.v1",
        "fields": [
            {"name": "entity", "type": "string"},
            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "value", "type": "double"},
            {"name": "metric_id", "type": "string"},
        ],
    }
)
"""What the views read of a Metric (``featurestore/events/schemas/metric.avsc`` has more)."""


def metrics_source(view: str) -> KafkaSource:
    """The metrics topic as the source of ``view``, whose offline table has the view's name."""
    return stream_source(
        "metrics",
        SETTINGS.topics.metrics,
        view,
        METRIC_SCHEMA,
        entity_field="entity",
        id_field="metric_id",
        description="observations of numeric metrics, Avro, keyed by entity",
    )


def _over(minutes: int) -> str:
    span = f"{minutes} minutes" if minutes > 1 else "minute"
    return f"of the entity's observed values in the {span} ending at the row's time"


_STATS = {
    "count": "number",
    "mean": "mean",
    "min": "least",
    "max": "greatest",
    "std": "sample standard deviation (null under two values)",
}
"""The statistics over each window: aggregation function -> how the description says it."""


def _stats(minutes: int) -> list[Field]:
    return [
        Field(
            name=f"value_{function}_{minutes}m",
            dtype=Int64 if function == "count" else Float64,
            description=f"{what} {_over(minutes)}",
        )
        for function, what in _STATS.items()
    ]


METRIC_ROLLING_SCHEMA = [
    Field(name="entity", dtype=String, description="the entity the values are of (join key)"),
    *_stats(1),
    *_stats(5),
    Field(
        name="value_last",
        dtype=Float64,
        description=(
            "the entity's latest observed value (by event time) in the 5 minutes ending at the"
            " row's time"
        ),
    ),
    Field(
        name="value_zscore_5m",
        dtype=Float64,
        description=(
            "(value_last - value_mean_5m) / value_std_5m: how many 5-minute standard deviations"
            " the latest value lies from the 5-minute mean (null when the std is null or 0)"
        ),
    ),
]

metric_rolling_1m = minute_view(
    "metric_rolling_1m",
    source=metrics_source("metric_rolling_1m"),
    entity=metric_entity,
    schema=METRIC_ROLLING_SCHEMA,
    aggregations=[
        *(
            per_minute(f"value_{function}_{minutes}m", function, "value", minutes)
            for minutes in (1, 5)
            for function in _STATS
        ),
        per_minute("value_last", "last", "value", 5),
    ],
    rows="window_end",
    derived={
        "value_zscore_5m": "(value_last - value_mean_5m) / value_std_5m",
    },
    description=(
        "rolling statistics of each entity's metric values: a row at the end of each minute,"
        " every window ending at the row's time (observations with event time before it)"
    ),
)
