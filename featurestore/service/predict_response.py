"""PredictResponse bytes written directly from what :mod:`.predict_read` read.

As in GetOnlineFeatures' fast path (:mod:`.raw_features`), the stored ``feast.types.Value`` and
``google.protobuf.Timestamp`` bytes are already the response's ``Value`` and ``Timestamp``
messages (same field numbers), so they are copied in with their protobuf framing written here
instead of building a message object per value: per prediction its ``request_id``, ``score``,
the model's ``feature_names`` (encoded once), ``feature_values`` (a PRESENT value's bytes, else
an empty ``Value``), the packed ``feature_statuses`` and ``feature_time`` (the entity's newest row
time). Everything but the request id is written once per scored rows (:func:`prediction_tails`,
kept by :mod:`.scored_rows`); a call joins its ids in. The result parses to the message the
general path builds (tested side by side).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from operator import add

import numpy as np
from featurestore_client.wire import FieldPrefixes
from featurestore_client.wire import field
from featurestore_client.wire import varint

from featurestore.service.predict_read import PRESENT
from featurestore.service.predict_read import ModelRows

__all__ = ["encode_names", "encode_predict_response", "prediction_tails"]

_EMPTY_VALUE = b"\x22\x00"
_ID_LENGTH = 32
"""A request id's characters (uuid4's 128 bits in hex)."""
_ID_TAG = b"\x0a\x20"
"""Prediction.request_id (1), 32 bytes long."""
_ID_SIZE = len(_ID_TAG) + _ID_LENGTH
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


def prediction_tails(
    names: bytes, rows: ModelRows, scores: np.ndarray
) -> list[tuple[bytes, bytes]]:
    """Per entity of ``rows``, its Prediction's framing up to the request id, and its fields after.

    A prediction is ``head + request_id + tail``: everything but the request id depends on the
    rows and scores alone, so it is written once per scored rows (:mod:`.scored_rows`).
    """
    count = len(scores)
    if count == 0:
        return []
    values = _value_rows(rows)
    width = rows.statuses.shape[1]
    status_prefix = b"\x2a" + varint(width) if width else b""
    statuses = rows.statuses.tobytes()
    newest = rows.newest()
    out = []
    for i in range(count):
        stamp = newest[i]
        tail = b"".join(
            (
                b"\x11",
                _pack_double(float(scores[i])),
                names,
                values[i],
                status_prefix,
                statuses[i * width : (i + 1) * width],
                b"" if stamp is None else field(0x32, stamp),
            )
        )
        out.append((_PREDICTION[_ID_SIZE + len(tail)] + _ID_TAG, tail))
    return out


def encode_predict_response(
    model_name: str,
    model_version: str,
    tails: Sequence[tuple[bytes, bytes]],
    request_ids: bytes,
) -> bytes:
    """The serialized PredictResponse of one prediction per tail (:func:`prediction_tails`).

    ``request_ids``: the predictions' ids, 32 ASCII characters each, joined.
    """
    parts = [field(0x0A, model_name.encode()), field(0x12, model_version.encode())]
    at = 0
    for head, tail in tails:
        parts += (head, request_ids[at : at + _ID_LENGTH], tail)
        at += _ID_LENGTH
    return b"".join(parts)
