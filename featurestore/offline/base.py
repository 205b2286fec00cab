"""The offline store's read interface: point-in-time correct training data.

A training row at time ``t`` gets, for each requested view, the feature values of the latest
feature row of its entity with ``event_timestamp <= t`` and ``event_timestamp >= t - ttl``
(both bounds inclusive, as Feast does; no lower bound when the TTL is 0), ties on
``event_timestamp`` going to the latest ``created_timestamp``; null when there is none. Output
rows keep the order and every column of the entity rows, with the features appended.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pandas as pd
import pyarrow as pa

from featurestore.definitions.model import FeatureRef
from featurestore.offline.entities import EntitySource
from featurestore.offline.labels import LabelSpec

__all__ = ["ExportStats", "OfflineStore", "TrainingRequest"]


@dataclass(frozen=True)
class TrainingRequest:
    """What to export: features (references or a service) for a set of entity rows."""

    features: Sequence[str | FeatureRef] | None = None
    """``view:feature`` references; exclusive with :attr:`feature_service`."""
    feature_service: str | None = None
    timestamp_column: str = "event_timestamp"
    """Entity column holding each row's point in time."""
    full_feature_names: bool = False
    """Name output columns ``view__feature`` instead of ``feature``."""
    allow_naive_timestamps: bool = True
    """Take naive entity timestamps as UTC (with a warning) instead of rejecting them."""
    labels: LabelSpec | None = None
    """Add forward-looking labels (:mod:`featurestore.offline.labels`) after the features."""

    def __post_init__(self) -> None:
        """Refuse a malformed selection at once, before anything connects (ValidationError)."""
        FeatureRef.selection(self.features, self.feature_service)


@dataclass(frozen=True)
class ExportStats:
    """What an export wrote."""

    rows: int
    batches: int
    seconds: float
    path: Path | None = None

    @property
    def rows_per_second(self) -> float:
        """Throughput in entity rows per second."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


class OfflineStore(abc.ABC):
    """Point-in-time joins of entity rows against the offline tables."""

    @abc.abstractmethod
    def iter_batches(
        self, entities: EntitySource, request: TrainingRequest
    ) -> Iterator[pa.RecordBatch]:
        """The training rows as Arrow record batches, in entity row order (streamed)."""

    def to_arrow(self, entities: EntitySource, request: TrainingRequest) -> pa.Table:
        """The training rows as one Arrow table."""
        batches = list(self.iter_batches(entities, request))
        return pa.Table.from_batches(batches)

    def to_pandas(self, entities: EntitySource, request: TrainingRequest) -> pd.DataFrame:
        """The training rows as a pandas DataFrame."""
        return self.to_arrow(entities, request).to_pandas()

    def close(self) -> None:
        """Release what the store keeps between joins (connections); it stays usable.

        A store that keeps nothing has nothing to release: this one does nothing.
        """
        return None

    def __enter__(self) -> Self:
        """The store itself; leaving calls :meth:`close`."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close what the store keeps (:meth:`close`)."""
        self.close()
