"""The history of a sequence model's entities, from the offline store, as recurrent states.

A sequence model (the LSTM) scores an entity's last ``window`` rows of its sample view. The
newest is the row Predict reads online; the ``window - 1`` before it come from the offline store,
point in time, exactly as training built them (:func:`models.training.lstm.sequences`): the
entity's previous rows of the sample view (event time strictly before the newest's), and at each
of their times the model's features as the point-in-time export joins them
(:meth:`OfflineStore.to_pandas`).

Those rows do not change once the newest row is there, so the state the model reaches after them
is computed once per (model version, entity, newest row time) and kept (bounded, oldest out):
each Predict then runs one step. An entity with fewer rows before its newest than the window
needs has no state and scores NaN, as training leaves such rows out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from featurestore.error_maps import postgres_errors
from featurestore.errors import ValidationError
from featurestore.offline import OfflineStore
from featurestore.offline import TrainingRequest
from featurestore.offline.tables import table_identifier
from featurestore.online import EntityKey
from featurestore.online.layout import decode_timestamp
from featurestore.service.datasets import OfflineAccess
from featurestore.service.models import LoadedModel

__all__ = ["SequenceStates"]

_Key = tuple[str, str, tuple[object, ...], bytes]


class SequenceStates:
    """Recurrent states after each entity's offline history (see the module docstring)."""

    def __init__(self, offline: OfflineAccess, dsn: str, *, max_entries: int = 100_000) -> None:
        """Read history through ``offline`` (and ``dsn``), keeping ``max_entries`` states."""
        self._offline = offline
        self._dsn = dsn
        self._max = max_entries
        self._states: dict[_Key, Any] = {}
        """Per (model, version, entity, newest row time): the state, or None (short history)."""

    async def states(
        self, model: LoadedModel, entities: Sequence[EntityKey], anchors: Sequence[bytes | None]
    ) -> tuple[Any, np.ndarray]:
        """The batch state of ``entities`` and which have one (the others' rows are zeros).

        ``anchors``: per entity, the stored time of its newest sample-view row (None: none).
        """
        sequence = model.sequence
        assert sequence is not None
        keys: list[_Key | None] = [
            None if anchor is None else (model.name, model.version, entity.values, anchor)
            for entity, anchor in zip(entities, anchors, strict=True)
        ]
        todo = {key: i for i, key in enumerate(keys) if key is not None and key not in self._states}
        if todo:
            store, _ = await self._offline.store()
            wanted = [(entities[i], decode_timestamp(key[3])) for key, i in todo.items()]
            found = await asyncio.to_thread(self._compute, store, model, wanted)
            for key, state in zip(todo, found, strict=True):
                if len(self._states) >= self._max:
                    del self._states[next(iter(self._states))]
                self._states[key] = state
        per_entity = [None if key is None else self._states.get(key) for key in keys]
        full = np.asarray([state is not None for state in per_entity], dtype=bool)
        filler = next((state for state in per_entity if state is not None), None)
        if filler is None:
            return None, full
        zero = sequence.split_states(sequence.stack_states([filler]))[0]
        zero = tuple(np.zeros_like(part) for part in zero) if isinstance(zero, tuple) else zero
        batch = sequence.stack_states([zero if s is None else s for s in per_entity])
        return batch, full

    def _compute(
        self, store: OfflineStore, model: LoadedModel, wanted: list[tuple[EntityKey, datetime]]
    ) -> list[Any]:
        """Per (entity, newest time): the state after its history, or None (too short)."""
        sequence = model.sequence
        assert sequence is not None
        steps = sequence.window - 1
        join_keys = wanted[0][0].join_keys
        if len(join_keys) != 1:
            raise ValidationError(
                f"entities: a sequence model reads entities of one join key, not {join_keys}",
                field="entities",
            )
        times = self._previous_times(store, sequence.sample_view, join_keys[0], wanted, steps)
        full = [len(t) == steps for t in times]
        if not any(full):
            return [None] * len(wanted)
        entity_rows = pd.DataFrame(
            {
                join_keys[0]: [
                    wanted[i][0].values[0] for i, ok in enumerate(full) if ok for _ in range(steps)
                ],
                "event_timestamp": [t for i, ok in enumerate(full) if ok for t in times[i]],
            }
        )
        request = TrainingRequest(features=[str(r) for r in model.refs], full_feature_names=True)
        frame = store.to_pandas(entity_rows, request)
        history = frame[list(model.columns)].to_numpy(dtype="float64")
        history = history.reshape(sum(full), steps, len(model.columns))
        states = iter(sequence.split_states(sequence.sequence_state(history)))
        return [next(states) if ok else None for ok in full]

    def _previous_times(
        self,
        store: OfflineStore,
        view_name: str,
        join_key: str,
        wanted: list[tuple[EntityKey, datetime]],
        steps: int,
    ) -> list[list[datetime]]:
        """Per entity, the event times of its last ``steps`` rows before its time, oldest first."""
        definitions = getattr(store, "definitions", None)
        if definitions is None:
            raise ValidationError("sequence models need the PostgreSQL offline store")
        source = definitions.view(view_name).source
        query = sql.SQL(
            "SELECT w.ord, r.ts FROM unnest(%s::text[], %s::timestamptz[]) "
            "WITH ORDINALITY AS w(key, anchor, ord) "
            "CROSS JOIN LATERAL (SELECT {ts} AS ts FROM {table} "
            "WHERE {key}::text = w.key AND {ts} < w.anchor ORDER BY {ts} DESC LIMIT %s) r"
        ).format(
            ts=sql.Identifier(source.timestamp_field),
            table=table_identifier(source.table),
            key=sql.Identifier(join_key),
        )
        params = ([str(e.values[0]) for e, _ in wanted], [t for _, t in wanted], steps)
        with (
            postgres_errors("reading a sequence model's history"),
            psycopg.connect(self._dsn, autocommit=True) as conn,
        ):
            conn.execute("SET TimeZone = 'UTC'")
            rows = conn.execute(query, params).fetchall()
        out: list[list[datetime]] = [[] for _ in wanted]
        for ordinal, ts in rows:
            out[int(ordinal) - 1].append(ts)
        return [sorted(times) for times in out]
