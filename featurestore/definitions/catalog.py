"""The store's definitions (``registry/``) under another project, tables, topics or TTL.

``registry/`` is the source of truth: ``featurestore registry apply`` and ``feast apply``
register what it defines, and readers (service, processors, export) read what was applied from
the Feast registry. Tests and benchmarks build the same definitions under their own project,
table and topic names, so that runs never collide: :func:`stream_definitions` for the views of
any streams (trades, quotes, metrics), :func:`market_definitions` for those of the trades.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from functools import cache

from featurestore.definitions.model import Definitions
from featurestore.definitions.model import FeatureView
from featurestore.definitions.repo import PROJECT
from featurestore.definitions.repo import load_repo
from featurestore.errors import ConfigurationError

__all__ = ["PROJECT", "market_definitions", "stream_definitions"]


@cache
def _registry() -> Definitions:
    return load_repo()


def _adapt(
    view: FeatureView,
    table_prefix: str,
    source_topic: str,
    partition_interval: str,
    ttl: timedelta | None,
) -> FeatureView:
    table = replace(
        view.source,
        table=f"{table_prefix}{view.source.table}",
        partition_interval=partition_interval,
    )
    stream = view.stream
    if stream is not None:
        stream = replace(stream, source=replace(stream.source, topic=source_topic))
    return replace(view, ttl=view.ttl if ttl is None else ttl, source=table, stream=stream)


def stream_definitions(
    topics: Mapping[str, str],
    project: str = PROJECT,
    *,
    table_prefix: str = "",
    partition_interval: str = "month",
    ttl: timedelta | None = None,
) -> Definitions:
    """The views of ``registry/`` computed from some of its streams, adapted (imports Feast once).

    Only those views are kept, with the entities they are keyed by and the feature services
    that read nothing else, so that the result can be applied and computed on its own.

    Args:
        topics: Stream name (a source's ``featurestore.stream`` tag: ``trades``, ``quotes``,
            ``metrics``) -> the Kafka topic its views are computed from.
        project: Feast project to define them in.
        table_prefix: Prepended to every offline table name (tests and benchmarks use a unique
            one); the views' names never change.
        partition_interval: ``day`` or ``month`` range partitions of the offline tables.
        ttl: How long a row stays valid after its event time (0: forever; None: each view's
            own). Online keys expire at event time + TTL (+ ``FEATURESTORE_REDIS__KEPT_PAST_TTL_S``)
            by the wall clock, so historical data replayed today needs 0.

    Raises:
        ConfigurationError: ``registry/`` has no stream of one of the names.
    """
    base = _registry()
    streams = {v.stream.source.name for v in base.views if v.stream is not None}
    unknown = sorted(set(topics) - streams)
    if unknown:
        raise ConfigurationError(
            f"registry/ has no stream {unknown[0]!r} (it has: {', '.join(sorted(streams))})"
        )
    views = tuple(
        _adapt(v, table_prefix, topics[v.stream.source.name], partition_interval, ttl)
        for v in base.views
        if v.stream is not None and v.stream.source.name in topics
    )
    kept = {v.name for v in views}
    entities = {e for v in views for e in v.entities}
    return replace(
        base,
        project=project,
        entities=tuple(e for e in base.entities if e.name in entities),
        views=views,
        services=tuple(s for s in base.services if all(ref.view in kept for ref in s.features)),
    )


def market_definitions(
    project: str = PROJECT,
    *,
    table_prefix: str = "",
    source_topic: str = "trades",
    partition_interval: str = "month",
    ttl: timedelta | None = None,
) -> Definitions:
    """The views of ``registry/`` computed from trades (:func:`stream_definitions`), adapted.

    Args:
        project: Feast project to define them in.
        table_prefix: Prepended to every offline table name.
        source_topic: The Kafka topic of trade events the views are computed from.
        partition_interval: ``day`` or ``month`` range partitions of the offline tables.
        ttl: How long a row stays valid after its event time (0: forever; None: each view's
            own).
    """
    return stream_definitions(
        {"trades": source_topic},
        project,
        table_prefix=table_prefix,
        partition_interval=partition_interval,
        ttl=ttl,
    )
