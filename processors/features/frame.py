"""The engine over an in-memory frame of events: the same definitions, without Kafka or Spark.

Demos, model bootstrapping and benchmarks fill offline tables from a frame of events (a
synthetic market, a file) with exactly the maths the processors run on the stream: the frame
is one partition whose log order is the frame's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from featurestore.definitions.model import Definitions
from featurestore.definitions.model import FeatureView
from featurestore.errors import ValidationError
from processors.features.engine import EventBatch
from processors.features.engine import FeatureOutput
from processors.features.engine import advance_chain
from processors.features.engine import process_chain
from processors.features.plan import SourcePlan
from processors.features.plan import ViewChain
from processors.features.plan import compile_chain
from processors.features.plan import compile_topic
from processors.features.state import PartitionFeatureState

__all__ = ["compute_frame", "frame_batch"]


def compute_frame(
    definitions: Definitions,
    events: pd.DataFrame,
    *,
    views: Sequence[FeatureView] | None = None,
    created: datetime | None = None,
    complete: bool = True,
) -> dict[str, pd.DataFrame]:
    """Each stream view's rows over ``events`` (columns named as the source's fields).

    Args:
        definitions: where the views (and their entity) are defined.
        events: one row per event, in log order; ``event_time`` column named by the source's
            timestamp field (aware datetimes or integer microseconds).
        views: the views to compute (default: every stream view of the definitions; they must
            read one source).
        created: the rows' created_timestamp (default: each event's own time, as if it
            entered the log when it happened).
        complete: the frame is the whole input: every window its events touch closes at its
            end (False: the last ones stay open, as in a stream waiting for more events).

    Returns:
        Per view, a frame of the offline contract: join key, event_timestamp,
        created_timestamp, the features, lineage.
    """
    chosen = list(views) if views is not None else [v for v in definitions.views if v.stream]
    if not chosen:
        raise ValidationError("no stream feature views to compute", field="views")
    join_key = definitions.join_key(chosen[0])
    by_name = {v.name: v for v in definitions.views}
    chains = [compile_chain(v, by_name, join_key) for v in chosen]
    direct = [v for v in chosen if v.stream is not None and v.stream.upstream is None]
    # Every view computed from the events at once, and a chained one through its own stages.
    runs = [ViewChain((compile_topic(direct, join_key),))] if direct else []
    runs += [c for c in chains if len(c.stages) > 1]
    source = chains[0].stages[0].source
    if events.empty:
        raise ValidationError("no events to compute features from", field="events")
    missing = [
        f for f in (source.entity_field, source.timestamp_field, *source.fields) if f not in events
    ]
    if missing:
        raise ValidationError(
            f"the events have no column {missing[0]!r}, which the views of topic"
            f" {source.topic!r} read (the events have: {', '.join(map(str, events.columns))})",
            field=missing[0],
        )
    batch = frame_batch(events, source, created)
    ev = batch.event_us
    outputs: list[FeatureOutput] = []
    for run in runs:
        states = [PartitionFeatureState() for _ in run.stages]
        outputs.append(process_chain(run, states, batch))
        if complete:
            drained = int(ev.max()) + sum(s.horizon_us for s in run.stages) + source.lateness_us
            outputs.append(advance_chain(run, states, drained))
    frames = {}
    for view in (c.view for c in chains):
        rows = _concat([o.rows[view.name] for o in outputs if view.name in o.rows])
        frame = pd.DataFrame(
            {name: rows[name] for name in ("entity", "event_us", "created_ms", *view.features)}
        )
        frame = frame.drop_duplicates(["entity", "event_us"], keep="last")
        frame = frame.sort_values(["entity", "event_us"], kind="stable").reset_index(drop=True)
        frame.insert(0, join_key, frame.pop("entity"))
        frame.insert(
            1, "event_timestamp", pd.to_datetime(frame.pop("event_us"), unit="us", utc=True)
        )
        frame.insert(
            2, "created_timestamp", pd.to_datetime(frame.pop("created_ms"), unit="ms", utc=True)
        )
        frames[view.name] = frame
    return frames


def frame_batch(
    events: pd.DataFrame, source: SourcePlan, created: datetime | None = None
) -> EventBatch:
    """``events`` (one row per event, in log order) as the engine's batch of one partition.

    ``created``: every event's Kafka time (default: its own event time).
    """
    times = events[source.timestamp_field]
    if pd.api.types.is_datetime64_any_dtype(times):
        event_us = times.dt.tz_convert("UTC").astype("datetime64[us, UTC]").astype("int64")
    else:
        event_us = times.astype("int64")
    ev = event_us.to_numpy(np.int64)
    n = len(ev)
    kafka_ms = (
        np.full(n, int(created.timestamp() * 1000), np.int64) if created is not None else ev // 1000
    )
    return EventBatch.of(
        entity=events[source.entity_field].astype(str).tolist(),
        event_us=ev,
        kafka_ms=kafka_ms,
        offset=np.arange(n),
        event_id=events[source.id_field].astype(str).tolist()
        if source.id_field and source.id_field in events
        else None,
        fields={name: _field(events[name], source) for name in source.fields},
    )


def _field(values: pd.Series, source: SourcePlan) -> npt.NDArray[np.float64]:
    """A field as the engine reads it: numbers, or a text field's codes.

    A text field's column holds its texts, or already their codes (a numeric column, as
    decoded records give it: :meth:`SourcePlan.text_codes`).
    """
    if values.name in dict(source.texts) and not pd.api.types.is_numeric_dtype(values):
        texts = [None if pd.isna(v) else str(v) for v in values.tolist()]
        return source.text_codes(str(values.name), texts)
    return np.asarray(values.to_numpy(np.float64), dtype=np.float64)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
