"""What Predict derives from a model version's rows of some entities, kept while the rows are.

A read of unchanged rows gives back the same :class:`~.predict_read.ModelRows` object (see
:mod:`.predict_read`), and a model scores the same matrix the same way, so per request and model
version Predict keeps one :class:`ScoredRows` and, while the read gives back the rows it holds,
reuses its scores and the bytes written of them: each prediction's response fields after its
request id, and the log's values, validity and feature times. A call then only draws its request
ids, joins them in, and hands its log records over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property

import numpy as np

from featurestore.events import to_micros
from featurestore.online.layout import decode_timestamp
from featurestore.service.predict_read import PRESENT
from featurestore.service.predict_read import ModelRows
from featurestore.service.predict_response import prediction_tails

__all__ = ["ScoredRows"]

_MICROS: dict[bytes, int] = {}
"""Stored ``Timestamp`` bytes -> epoch microseconds (bounded: cleared when full)."""
_MAX_MICROS = 100_000


@dataclass
class ScoredRows:
    """One model version's scores of ``rows``, with what is written of them (module docstring)."""

    rows: ModelRows
    scores: np.ndarray
    """One float64 per entity (NaN: no score)."""
    names: bytes = field(repr=False)
    """The model's encoded ``feature_names`` (:func:`~.predict_response.encode_names`)."""

    @cached_property
    def tails(self) -> list[tuple[bytes, bytes]]:
        """Per entity, its Prediction's framing up to the request id, and its fields after."""
        return prediction_tails(self.names, self.rows, self.scores)

    @cached_property
    def valid(self) -> np.ndarray:
        """Entities x features: whether the value is logged (PRESENT and a number)."""
        valid: np.ndarray = (self.rows.statuses == PRESENT) & ~np.isnan(self.rows.matrix)
        return valid

    @cached_property
    def feature_times(self) -> list[int | None]:
        """Per entity, its newest row's time in epoch microseconds (None: no row)."""
        return _micros_of_stamps(self.rows.newest())


def _micros_of_stamps(stamps: Sequence[bytes | None]) -> list[int | None]:
    """Stored ``Timestamp`` bytes as epoch microseconds (each distinct one decoded once)."""
    if len(_MICROS) > _MAX_MICROS:
        _MICROS.clear()
    out: list[int | None] = []
    for stamp in stamps:
        if stamp is None:
            out.append(None)
            continue
        micros = _MICROS.get(stamp)
        if micros is None:
            micros = _MICROS[stamp] = to_micros(decode_timestamp(stamp))
        out.append(micros)
    return out
