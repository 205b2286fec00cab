"""The PredictionLog records of one Predict call, Avro-encoded column-wise.

Predict logs one PredictionLog per entity it scored. Building a :class:`PredictionLog` per row
and handing it to fastavro cost ~10 ms at 100 entities x 9 features on this machine, in the
serving process, on its GIL (bench/RESULTS.md, predict). The schema's layout per row is fixed
but for a few variable parts, so the records are written here from the call's arrays instead:

- per model version, the bytes that never change (the model's name and version, each feature's
  map key) are encoded once (:class:`PredictionLogEncoder`);
- the ``features`` map and the ``prediction`` of all rows are one ``uint8`` matrix filled from a
  template row by NumPy (the doubles copied into their slots; a missing feature's 8 bytes cut
  out and its union branch set to null);
- the request id, the entity map and the ``feature_time`` are joined per row as bytes.

Predict hands over the same ``values``, ``valid`` and ``scores`` arrays while an entity batch's
rows are unchanged (:mod:`.scored_rows`), so the rows' bodies are kept on those arrays' identity
(a few batches per model version) and only the ids and times are new per call.

The result is, byte for byte, what :class:`~featurestore.events.AvroSerializer` writes for the
same event (fastavro's encoding: a map as one block with a positive count then ``0``; tested),
so every reader of the predictions topic is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from featurestore_client.wire import varint

from featurestore.events.wire import frame_header

__all__ = ["PredictionLogEncoder", "PredictionRows", "avro_long", "avro_string", "split_ids"]

_NULL_BRANCH = 0x00
_VALUE_BRANCH = 0x02
"""Union ``["null", X]``: branch index 0 or 1, as a zigzag long."""
_MAX_ENTITIES = 100_000
_MAX_KEPT_BODIES = 64
"""Bodies kept per model version, each for one (values, valid, scores) triple of arrays."""


def avro_long(n: int) -> bytes:
    """An Avro ``long``: zigzag, then the same base-128 varint as protobuf's."""
    return varint((n << 1) ^ (n >> 63))


_LENGTHS = tuple(avro_long(n) for n in range(4096))
"""The encoded lengths of short strings (the per-row cost was the varint loop)."""


def avro_string(text: str) -> bytes:
    """An Avro ``string``: its UTF-8 length as a long, then the bytes."""
    data = text.encode()
    n = len(data)
    return (_LENGTHS[n] if n < 4096 else avro_long(n)) + data


def split_ids(text: str) -> list[str]:
    """Request ids given joined (32 hex digits each, as Predict draws them) as a list."""
    return [text[i : i + 32] for i in range(0, len(text), 32)]


@dataclass(frozen=True)
class PredictionRows:
    """What one Predict call logs: one PredictionLog per row."""

    request_ids: Sequence[str]
    join_keys: tuple[str, ...]
    entity_values: Sequence[tuple[object, ...]]
    """Per row, the entity's values in ``join_keys`` order (logged as ``str(value)``)."""
    values: np.ndarray
    """Rows x features, float64."""
    valid: np.ndarray
    """Rows x features, bool: False where the feature is logged as null."""
    scores: np.ndarray
    """One float64 per row."""
    feature_times: Sequence[int | None]
    """Per row, the newest feature row's time in epoch microseconds (None: no row)."""
    request_time: int
    """Epoch microseconds."""
    response_time: int
    """Epoch microseconds."""


class PredictionLogEncoder:
    """Writes the framed Avro records of one model version's predictions (module docstring)."""

    def __init__(
        self, schema_id: int, model_name: str, model_version: str, features: Sequence[str]
    ) -> None:
        """Records written with ``schema_id``, the map keys ``features`` in this order."""
        self.features = tuple(features)
        self._header = frame_header(schema_id)
        self._model = avro_string(model_name) + avro_string(model_version)
        keys = [avro_string(name) for name in self.features]
        count = len(keys)
        template = bytearray(avro_long(count) if count else b"")
        branch: list[int] = []
        doubles: list[int] = []
        for key in keys:
            template += key
            branch.append(len(template))
            template.append(_VALUE_BRANCH)
            doubles.extend(range(len(template), len(template) + 8))
            template += bytes(8)
        template.append(0)  # the map's end
        self._prediction = np.arange(len(template), len(template) + 8)
        template += bytes(8)
        self._template = np.frombuffer(bytes(template), dtype=np.uint8)
        self._branch = np.asarray(branch, dtype=np.intp)
        self._doubles = np.asarray(doubles, dtype=np.intp)
        self._entity_keys: dict[tuple[str, ...], list[bytes]] = {}
        self._entities_seen: dict[tuple[tuple[str, ...], tuple[object, ...]], bytes] = {}
        """Encoded entity maps (bounded: cleared when full)."""
        self._kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]] = {}
        """Bodies by ``id(values)``, with the arrays they were written from (held: ids stay)."""

    def encode(self, rows: PredictionRows) -> list[bytes]:
        """The framed records (Confluent header + Avro body), one per row, in row order."""
        n = len(rows.request_ids)
        if n == 0:
            return []
        bodies = self._bodies(rows, n)
        entities = self._entities(rows)
        times = avro_long(rows.request_time) + avro_long(rows.response_time)
        stamps: dict[int | None, bytes] = {None: bytes((_NULL_BRANCH,))}
        prefix = self._header
        model = self._model
        out = []
        for i in range(n):
            at = rows.feature_times[i]
            stamp = stamps.get(at)
            if stamp is None:
                stamp = stamps[at] = bytes((_VALUE_BRANCH,)) + avro_long(at)  # type: ignore[arg-type]
            out.append(
                b"".join(
                    (
                        prefix,
                        avro_string(rows.request_ids[i]),
                        model,
                        entities[i],
                        bodies[i],
                        stamp,
                        times,
                    )
                )
            )
        return out

    def _bodies(self, rows: PredictionRows, n: int) -> list[bytes]:
        """Per row, its ``features`` map and ``prediction`` (kept for the same arrays)."""
        kept = self._kept.get(id(rows.values))
        if (
            kept is not None
            and kept[0] is rows.values
            and kept[1] is rows.valid
            and kept[2] is rows.scores
        ):
            return kept[3]
        bodies = self._write_bodies(rows, n)
        if len(self._kept) >= _MAX_KEPT_BODIES:
            del self._kept[next(iter(self._kept))]
        self._kept[id(rows.values)] = (rows.values, rows.valid, rows.scores, bodies)
        return bodies

    def _write_bodies(self, rows: PredictionRows, n: int) -> list[bytes]:
        width = len(self._template)
        table = np.empty((n, width), dtype=np.uint8)
        table[:] = self._template
        values = np.ascontiguousarray(rows.values, dtype="<f8")
        if values.shape != (n, len(self.features)):
            raise ValueError(
                f"values: {values.shape} for {n} rows of {len(self.features)} features"
            )
        table[:, self._doubles] = values.view(np.uint8).reshape(n, -1)
        scores = np.ascontiguousarray(rows.scores, dtype="<f8").reshape(n, 1)
        table[:, self._prediction] = scores.view(np.uint8)
        valid = np.asarray(rows.valid, dtype=bool)
        if valid.all():
            flat = table.tobytes()
            return [flat[i * width : (i + 1) * width] for i in range(n)]
        table[:, self._branch] = np.where(valid, _VALUE_BRANCH, _NULL_BRANCH)
        keep = np.ones((n, width), dtype=bool)
        keep[:, self._doubles] = np.repeat(valid, 8, axis=1)
        flat = table[keep].tobytes()
        ends = np.cumsum(keep.sum(axis=1)).tolist()
        starts = [0, *ends[:-1]]
        return [flat[a:b] for a, b in zip(starts, ends, strict=True)]

    def _entities(self, rows: PredictionRows) -> list[bytes]:
        """Per row, its ``entity`` map (each distinct entity encoded once, then kept)."""
        seen = self._entities_seen
        if len(seen) > _MAX_ENTITIES:
            seen.clear()
        join_keys = rows.join_keys
        out = []
        for values in rows.entity_values:
            encoded = seen.get((join_keys, values))
            if encoded is None:
                encoded = seen[(join_keys, values)] = self._entity(join_keys, values)
            out.append(encoded)
        return out

    def _entity(self, join_keys: tuple[str, ...], values: tuple[object, ...]) -> bytes:
        keys = self._entity_keys.get(join_keys)
        if keys is None:
            keys = self._entity_keys[join_keys] = [avro_string(k) for k in join_keys]
        if not keys:
            return b"\x00"
        pairs = b"".join(k + avro_string(str(v)) for k, v in zip(keys, values, strict=True))
        return avro_long(len(keys)) + pairs + b"\x00"
