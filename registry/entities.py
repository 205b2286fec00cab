"""Entities: what feature rows are about."""

from __future__ import annotations

from feast import Entity
from feast import ValueType

symbol = Entity(
    name="symbol",
    join_keys=["symbol"],
    value_type=ValueType.STRING,
    description="a traded instrument's ticker",
)

metric_entity = Entity(
    name="metric_entity",
    join_keys=["entity"],
    value_type=ValueType.STRING,
    description=(
        "what a metric observation is about (a host, a user, a sensor): the Metric event's"
        " entity field, its Kafka key"
    ),
)
