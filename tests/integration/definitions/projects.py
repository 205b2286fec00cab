"""Feast projects of a test's own on the stack: the registry CLI, and the clean-up after."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner
from click.testing import Result

from featurestore.cli import main
from featurestore.config import Settings
from featurestore.definitions.repo_config import REGISTRY_SCHEMA

__all__ = ["drop_project", "registry", "trade_views_repo"]

_TRADE_VIEWS = """
import json
from datetime import timedelta

from feast import Entity, FeatureView, Field, KafkaSource, StreamFeatureView, ValueType
from feast.aggregation import Aggregation
from feast.data_format import AvroFormat
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.types import Float64, Int64, String

symbol = Entity(name="symbol", join_keys=[{join_key!r}], value_type=ValueType.STRING)
SCHEMA = json.dumps({{"type": "record", "name": "Trade", "fields": [
    {{"name": "symbol", "type": "string"}},
    {{"name": "price", "type": "double"}},
    {{"name": "event_time", "type": {{"type": "long", "logicalType": "timestamp-micros"}}}},
    {{"name": "trade_id", "type": "string"}},
]}})


def view(name, hours, aggregations):
    source = KafkaSource(
        name=f"trades_{{name}}",
        topic={topic!r},
        kafka_bootstrap_servers="127.0.0.1:9",
        timestamp_field="event_time",
        message_format=AvroFormat(schema_json=SCHEMA),
        watermark_delay_threshold=timedelta(seconds=5),
        batch_source=PostgreSQLSource(
            name=f"{{name}}_source",
            table={prefix!r} + name,
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
        ),
        tags={{"featurestore.stream": "trades", "featurestore.entity_field": "symbol",
               "featurestore.id_field": "trade_id"}},
    )
    return StreamFeatureView(
        name=name,
        source=source,
        entities=[symbol],
        ttl=timedelta(hours=hours),
        schema=[Field(name={join_key!r}, dtype=String)]
        + [Field(name=a, dtype=Float64) for a, _, _ in aggregations],
        aggregations=[
            Aggregation(column="price", function=f, time_window=timedelta(minutes=m),
                        slide_interval=timedelta(minutes=1), name=a)
            for a, f, m in aggregations
        ],
        timestamp_field="event_time",
        tiling_hop_size=timedelta(minutes=1),
        tags={{"featurestore.rows": "window_end"}},
    )

"""


def trade_views_repo(topic: str, prefix: str, join_key: str = "symbol") -> str:
    """The opening of a Feast repo file whose views the test adds after it.

    It declares the entity ``symbol`` (join key ``join_key``) and ``view(name, hours,
    aggregations)``: a stream view of the trades of ``topic`` with a TTL of ``hours``, its
    offline table ``prefix + name``, and a feature per ``(name, function, minutes)``
    aggregation of the price, a minute apart.
    """
    return _TRADE_VIEWS.format(topic=topic, prefix=prefix, join_key=join_key)


def registry(*args: str) -> Result:
    """``featurestore registry ARGS``, in process."""
    return CliRunner().invoke(main, ["registry", *args])


def drop_project(stack: Settings, project: str, views: tuple[str, ...]) -> None:
    """Remove ``project``'s rows from Feast's SQL registry and its views' offline tables."""
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in views:
            conn.execute(f'DROP TABLE IF EXISTS "{project}_{view}" CASCADE')
        for (table,) in conn.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = %s AND column_name = 'project_id'",
            (REGISTRY_SCHEMA,),
        ).fetchall():
            conn.execute(
                f'DELETE FROM "{REGISTRY_SCHEMA}"."{table}" WHERE project_id = %s', (project,)
            )
