"""PredictResponse bytes written directly from what :mod:`.predict_read` read.

As in GetOnlineFeatures' fast path (:mod:`.raw_features`), the stored ``feast.types.Value`` and
``google.protobuf.Timestamp`` bytes are already the response's ``Value`` and ``Timestamp``
messages (same field numbers), so they are copied in with their protobuf framing written here
instead of building a message object per value: per prediction its ``request_id``, ``score``,
the model's ``feature_names`` (encoded once), ``feature_values`` (a PRESENT value's bytes, else
an empty ``Value``), the packed ``feature_statuses`` and ``feature_time`` (the entity's newest row
time). The result parses to the message the general path builds (tested side by side).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from operator import add

import numpy as np
from featurestore_client.wire import FieldPrefixes, field, varint

from featurestore.service.predict_read import PRESENT, ModelRows

__all__ = ["encode_names", "encode_predict_response"]

_EMPTY_VALUE = b"\x22\x00"
_pack_double = struct.Struct("<d").pack


_VALUE = FieldPrefixes(0x22)  # Prediction.feature_values (4)
_PREDICTION = FieldPrefixes(0x1A)  # PredictResponse.predictions (3)


def encode_names(names: Sequence[str]) -> bytes:
    """The encoded ``feature_names`` fields of a Prediction (the same for every entity)."""
    return b"".join(field(0x1A, name.encode()) for name in names)


def _value_rows(rows: ModelRows) -> list[bytes]:
    """Per entity, its encoded ``feature_values`` fields."""
    framed = []
    for j, raw in enumerate(rows.values):
        present = rows.statuses[:, j] == PRESENT
        if present.all():
            framed.append(list(map(add, map(_VALUE.__getitem__, map(len, raw)), raw)))  # type: ignore[arg-type]
        else:
            framed.append(
                [
                    _VALUE[len(value)] + value if ok and value is not None else _EMPTY_VALUE
                    for value, ok in zip(raw, present.tolist(), strict=True)
                ]
            )
    return list(map(b"".join, zip(*framed, strict=True)))


def encode_predict_response(
    model_name: str,
    model_version: str,
    names: bytes,
    rows: ModelRows,
    scores: np.ndarray,
    request_ids: Sequence[str],
) -> bytes:
    """The serialized PredictResponse of one prediction per entity of ``rows``."""
    head = field(0x0A, model_name.encode()) + field(0x12, model_version.encode())
    count = len(request_ids)
    if count == 0:
        return head
    values = _value_rows(rows)
    width = rows.statuses.shape[1]
    status_prefix = b"\x2a" + varint(width)
    statuses = rows.statuses.tobytes()
    newest = rows.newest()
    parts = [head]
    for i in range(count):
        stamp = newest[i]
        body = b"".join(
            (
                b"\x0a\x20",
                request_ids[i].encode(),
                b"\x11",
                _pack_double(float(scores[i])),
                names,
                values[i],
                status_prefix if width else b"",
                statuses[i * width : (i + 1) * width],
                b"" if stamp is None else field(0x32, stamp),
            )
        )
        parts.append(_PREDICTION[len(body)])
        parts.append(body)
    return b"".join(parts)
