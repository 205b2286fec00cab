"""Where each feature view stands against its topic: not started, backfilling, live, retired.

A view's state rows hold, per partition, the first offset it has not applied; the topic's end
offsets say how far the log goes. A view added by ``registry apply`` starts at the beginning of
the log (its rows are backfilled by the stream itself) and is live once it has caught up; a
view removed from the definitions keeps its rows and state but is no longer written (retired).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.error_maps import postgres_error
from featurestore.events.replay import end_offsets
from processors.state_table import ensure_state_table
from processors.state_table import view_offsets

__all__ = ["ViewProgress", "view_progress"]

LIVE_LAG = 10_000
"""Records behind the end of the log under which a view counts as live (a few batches)."""


@dataclass(frozen=True)
class ViewProgress:
    """One view of one processor, against its topic."""

    view: str
    topic: str
    applied: int
    """Records applied, summed over partitions."""
    end: int
    """Records in the topic, summed over partitions."""
    defined: bool

    @property
    def state(self) -> str:
        """``not started``, ``backfilling``, ``live`` or ``retired``."""
        if not self.defined:
            return "retired"
        if self.applied == 0 and self.end > 0:
            return "not started"
        return "live" if self.end - self.applied <= LIVE_LAG else "backfilling"

    def describe(self) -> str:
        """``backfilling at offset X of Y``, and so on."""
        if self.state == "backfilling":
            return f"backfilling at offset {self.applied:,} of {self.end:,}"
        return f"{self.state} ({self.applied:,} of {self.end:,} records applied)"


def view_progress(
    settings: Settings, definitions: Definitions, processor: str = "features"
) -> list[ViewProgress]:
    """The progress of every stream view of the definitions, and of retired ones.

    Raises:
        BackendUnavailableError: PostgreSQL or Kafka cannot be reached.
    """
    topics = sorted({v.stream.source.topic for v in definitions.views if v.stream is not None})
    defined = {v.name for v in definitions.views if v.stream is not None}
    out = []
    try:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            ensure_state_table(conn)
            stored = {
                topic: view_offsets(conn, processor, definitions.project, topic) for topic in topics
            }
    except psycopg.OperationalError as exc:
        raise postgres_error(exc, "reading the state table") from exc
    for topic in topics:
        ends = end_offsets(settings.kafka.connection, topic)
        end = sum(ends.values())
        names = {
            v.name for v in definitions.views if v.stream and v.stream.source.topic == topic
        } | set(stored[topic])
        for name in sorted(names):
            applied = sum(
                min(offset, ends.get(p, offset))
                for p, offset in stored[topic].get(name, {}).items()
            )
            out.append(ViewProgress(name, topic, applied, end, name in defined))
    return out
