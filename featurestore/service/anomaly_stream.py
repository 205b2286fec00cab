"""Live subscriptions to the anomalies topic: the anomaly filter over :mod:`.topic_stream`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from featurestore.events import Anomaly
from featurestore.service.topic_stream import StartAt
from featurestore.service.topic_stream import Streamed
from featurestore.service.topic_stream import TooManySubscriptionsError
from featurestore.service.topic_stream import TopicSubscriptions

__all__ = [
    "AnomalyFilter",
    "AnomalySubscriptions",
    "StartAt",
    "Streamed",
    "TooManySubscriptionsError",
]


@dataclass(frozen=True)
class AnomalyFilter:
    """Which anomalies a subscriber wants."""

    symbols: frozenset[str] = frozenset()
    """Only these symbols; all when empty."""
    min_score: float = float("-inf")
    not_before: datetime | None = None
    """Only anomalies whose event time is at or after this (aware) time."""

    def accepts(self, anomaly: Anomaly) -> bool:
        """Whether ``anomaly`` passes every filter."""
        if self.symbols and anomaly.symbol not in self.symbols:
            return False
        if anomaly.score < self.min_score:
            return False
        return self.not_before is None or anomaly.event_time >= self.not_before


AnomalySubscriptions: TypeAlias = TopicSubscriptions[Anomaly]
"""Subscriptions to the :class:`Anomaly` events of the anomalies topic."""
