"""The protobuf wire framing that the SDK and the server write by hand.

Where building a message object per value costs more than the call's own work (the SDK's
GetOnlineFeatures request, the server's GetOnlineFeatures and Predict responses), the bytes are
written directly: a length-delimited field is its tag byte, the payload's length as a varint,
then the payload, and a repeated field is a concatenation of such fields.

This is the one definition of that framing. The server imports it from here: its environment
installs this package beside it (``deploy/bootstrap.sh``, ``deploy/Dockerfile``), as its
dashboard does, and the SDK cannot import the server. Only tags of field numbers 1-15 (one byte)
are written this way.
"""

from __future__ import annotations

__all__ = ["FieldPrefixes", "field", "varint"]


def varint(n: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: int, payload: bytes) -> bytes:
    """One length-delimited field: tag, length, payload."""
    return bytes((tag,)) + varint(len(payload)) + payload


class FieldPrefixes(dict[int, bytes]):
    """Tag + length of one length-delimited field, by payload length (filled on first use).

    The encoders frame thousands of values of a few distinct lengths per response: the prefix of
    each length is computed once and then looked up (``prefixes[len(value)] + value``), or used to
    join values of one length in a single C-level pass.
    """

    def __init__(self, tag: int) -> None:
        """``tag``: the field's tag byte (field number << 3 | 2)."""
        super().__init__()
        self._tag = bytes((tag,))

    def __missing__(self, n: int) -> bytes:
        """The prefix of a payload of ``n`` bytes, computed and kept."""
        prefix = self[n] = self._tag + varint(n)
        return prefix
