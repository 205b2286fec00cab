"""What one ingest run read, sent and dead-lettered: the loop's result and its metrics' input."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from dataclasses import field

__all__ = ["IngestSummary"]


@dataclass
class IngestSummary:
    """What one ingest run read, sent and dead-lettered."""

    topics: tuple[str, ...]
    """The event topics of the run."""
    dead_letter_topic: str
    read: int = 0
    sent: int = 0
    """Records acknowledged on the event topics, all together."""
    sent_by_topic: dict[str, int] = field(default_factory=dict)
    """Records acknowledged per event topic."""
    dead_lettered: int = 0
    """Records acknowledged on the dead-letter topic."""
    failed: int = 0
    """Records the broker never acknowledged."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Dead-letter counts by reason code."""
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Tell whether every record read is accounted for by an acknowledgement."""
        return self.sent + self.dead_lettered == self.read and self.failed == 0
