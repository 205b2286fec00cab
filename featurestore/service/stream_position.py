"""Where a stream's subscriber is in its topic, and its resume token.

Shared by StreamAnomalies and StreamPredictions (:mod:`.topic_stream`).

The position holds, for EVERY partition of the topic, the next offset to read. A record advances
its partition whether or not it passes the subscriber's filters, so that a client that reconnects
with the token of the last message it received neither sees a record twice nor misses one, and
does not re-read what its filters dropped before that message.

A token is ``v1.`` followed by URL-safe base64 (unpadded) of compact JSON
``{"t": topic, "p": {"<partition>": next_offset, ...}}``. It is opaque to clients; the topic is
in it so that a token of another topic is refused instead of silently misread.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from featurestore.errors import ValidationError

__all__ = ["StreamPosition"]

_VERSION = "v1."
_FIELD = "resume_token"


@dataclass
class StreamPosition:
    """The next offset of each partition of one topic (mutable: it advances as records are read)."""

    topic: str
    next_offsets: dict[int, int] = field(default_factory=dict)

    def advance(self, partition: int, offset: int) -> None:
        """Record that the record at ``offset`` of ``partition`` has been read."""
        self.next_offsets[partition] = offset + 1

    def token(self) -> str:
        """The resume token of the position as it is now."""
        payload = {"t": self.topic, "p": {str(p): o for p, o in sorted(self.next_offsets.items())}}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return _VERSION + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def from_token(cls, token: str, topic: str) -> StreamPosition:
        """Parse a token of ``topic``; raises :class:`ValidationError` naming ``resume_token``."""
        if not token.startswith(_VERSION):
            raise ValidationError(f"{_FIELD}: not a resume token of this server", field=_FIELD)
        body = token[len(_VERSION) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload = json.loads(raw)
            offsets = _offsets(payload["p"])
            token_topic = payload["t"]
        except (
            binascii.Error,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
        ) as exc:
            # RecursionError: JSON nested deeper than the parser's recursion limit.
            raise ValidationError(f"{_FIELD}: malformed resume token", field=_FIELD) from exc
        if token_topic != topic:
            raise ValidationError(
                f"{_FIELD}: the token is a position in topic {token_topic!r}, not {topic!r}",
                field=_FIELD,
            )
        return cls(topic, offsets)


def _offsets(raw: Mapping[str, object]) -> dict[int, int]:
    offsets = {int(p): int(str(o)) for p, o in raw.items()}
    # Kafka's partitions are int32 and its offsets int64 (librdkafka overflows past them).
    if any(not (0 <= p < 2**31 and 0 <= o < 2**63) for p, o in offsets.items()):
        raise ValueError("a partition or offset out of Kafka's range")
    return offsets
