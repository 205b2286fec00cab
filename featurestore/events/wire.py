"""The Confluent wire format: magic byte ``0``, a 4-byte big-endian schema id, the Avro body.

Any Confluent-Avro producer or consumer, in any language, reads and writes this framing.
"""

from __future__ import annotations

import struct

from featurestore.errors import ValidationError

__all__ = ["HEADER_SIZE", "MAGIC_BYTE", "SerializationError", "frame_header", "parse_header"]

MAGIC_BYTE = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")


class SerializationError(ValidationError):
    """A record cannot be encoded or decoded.

    Bad framing, an unknown schema, or a body that does not match its schema. Never
    retryable: the record belongs in the dead-letter topic.
    """


def frame_header(schema_id: int) -> bytes:
    """Return the 5 bytes that precede the Avro body of a record written with ``schema_id``."""
    return _HEADER.pack(MAGIC_BYTE, schema_id)


def parse_header(data: bytes | memoryview) -> int:
    """Return the schema id of a framed record.

    Raises:
        SerializationError: the record is too short or does not start with the magic byte.

    """
    if len(data) < HEADER_SIZE:
        raise SerializationError(f"record of {len(data)} bytes is shorter than the wire header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise SerializationError(f"unknown magic byte {magic}: not Confluent-framed Avro")
    return int(schema_id)
