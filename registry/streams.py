"""How a view of this repo reads its event topic: one ``KafkaSource`` per view.

Each view reads its topic through a source of its own whose ``batch_source`` is the view's
offline table (see ``README.md`` for why); the ``featurestore.*`` tags carry what Feast has no
field for. ``trades.py``, ``quotes.py`` and ``metrics.py`` build their sources here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from feast import Entity
from feast import Field
from feast import KafkaSource
from feast import StreamFeatureView
from feast.aggregation import Aggregation
from feast.data_format import AvroFormat
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)

from featurestore.config import load_settings

SETTINGS = load_settings()  # FEATURESTORE_* variables, as every process of the store reads them


def stream_source(
    stream: str,
    topic: str,
    view: str,
    schema_json: str,
    *,
    entity_field: str,
    id_field: str,
    description: str,
    columns: Mapping[str, str] | None = None,
    retention: str | None = None,
) -> KafkaSource:
    """``topic`` as the source of ``view``, whose offline table has the view's name.

    Args:
        stream: The name the views of one topic share (tag ``featurestore.stream``).
        topic: The Kafka topic.
        view: The view this source is for (its table).
        schema_json: The Avro record of the fields the views read.
        entity_field: The field holding the entity key (the Kafka key).
        id_field: The event id (repeats are dropped as duplicates).
        description: What the topic holds.
        columns: Computed columns, name -> expression, in the order they may read each other.
        retention: How long the view's offline table keeps rows (``30d``, ``12h``, ``90m``;
            None: forever); older partitions are dropped on a schedule, the log keeps
            everything.
    """
    return KafkaSource(
        name=f"{stream}_{view}",
        topic=topic,
        kafka_bootstrap_servers=SETTINGS.kafka.bootstrap,
        timestamp_field="event_time",
        message_format=AvroFormat(schema_json=schema_json),
        watermark_delay_threshold=timedelta(seconds=5),
        batch_source=PostgreSQLSource(
            name=f"{view}_source",
            table=view,
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
            tags={"partition_interval": "month", **({"retention": retention} if retention else {})},
        ),
        tags={
            "featurestore.stream": stream,
            "featurestore.entity_field": entity_field,
            "featurestore.id_field": id_field,
            **{f"featurestore.column.{name}": text for name, text in (columns or {}).items()},
        },
        description=description,
    )


def per_minute(name: str, function: str, column: str, minutes: int) -> Aggregation:
    """``function`` of ``column`` over windows of ``minutes`` minutes, sliding by one minute."""
    return Aggregation(
        column=column,
        function=function,
        time_window=timedelta(minutes=minutes),
        slide_interval=timedelta(minutes=1),
        name=name,
    )


def minute_view(
    name: str,
    *,
    source: KafkaSource,
    entity: Entity,
    schema: list[Field],
    aggregations: list[Aggregation],
    rows: str,
    description: str,
    derived: Mapping[str, str] | None = None,
    online: bool = True,
) -> StreamFeatureView:
    """A view of ``source``'s topic, tiled by the minute, whose rows live an hour online.

    Args:
        name: The view's name (and its offline table's).
        source: Its topic, through a source of its own (:func:`stream_source`).
        entity: What its rows are about; ``schema[0]`` is its join key.
        schema: The join key, then every feature (aggregated or derived) in column order.
        aggregations: The aggregated features.
        rows: When a row is written (tag ``featurestore.rows``): ``running`` at every event,
            ``window_end`` at the end of each minute.
        description: What the view holds.
        derived: Features computed from the aggregated ones, name -> expression.
        online: False (Feast's ``online=False``): offline only, its rows in its offline table
            and none in the online store (features only trained on).
    """
    return StreamFeatureView(
        name=name,
        source=source,
        entities=[entity],
        ttl=timedelta(hours=1),
        schema=schema,
        aggregations=aggregations,
        timestamp_field="event_time",
        tiling_hop_size=timedelta(minutes=1),
        online=online,
        tags={
            "featurestore.rows": rows,
            **{f"featurestore.derived.{n}": text for n, text in (derived or {}).items()},
            "featurestore.features": ",".join(f.name for f in schema[1:]),
        },
        description=description,
    )
