"""Arrow IPC streams over gRPC: the ones the server sends, and the one a client sends it.

Sent: cut into gRPC-sized pieces, the schema first, then one record batch each. Concatenating the
pieces in order gives one valid Arrow IPC stream (end-of-stream marker included). Batches are
sliced so that each piece stays well under gRPC's default 4 MiB message limit, whatever
``batch_rows`` the caller asked for.

Received (:func:`read_ipc_table`): the rows and the decoded size each record batch declares in
its metadata are checked before any batch is decoded. Record batches may be compressed (LZ4 or
ZSTD), and a 17 KB request can declare a 512 MiB column: decoding first would allocate it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from featurestore.errors import ValidationError

__all__ = ["IpcPieces", "read_ipc_table"]

MAX_PIECE_BYTES = 2 << 20
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""Continuation marker and a zero length: the end of an Arrow IPC stream."""


class IpcPieces:
    """Encapsulated IPC messages of one schema: the schema, record batches, the end marker."""

    def __init__(self, schema: pa.Schema, batch_rows: int) -> None:
        # Dictionary columns would need dictionary messages in the stream: send plain values.
        """Encode batches of ``schema``, ``batch_rows`` rows at most per message."""
        self.schema = pa.schema(
            [
                f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                for f in schema
            ],
            metadata=schema.metadata,
        )
        self._batch_rows = batch_rows

    def schema_piece(self) -> bytes:
        """The first piece: the schema message."""
        return bytes(self.schema.serialize().to_pybytes())

    def batch_pieces(self, batch: pa.RecordBatch) -> Iterator[tuple[bytes, int]]:
        """(piece, rows) for each slice of ``batch``; the batch is cast to the stream's schema."""
        if batch.schema != self.schema:
            batch = batch.cast(self.schema)
        if batch.num_rows == 0:
            return
        per_row = max(1, batch.nbytes // batch.num_rows)
        step = max(1, min(self._batch_rows, MAX_PIECE_BYTES // per_row))
        for start in range(0, batch.num_rows, step):
            part = batch.slice(start, step)
            yield bytes(part.serialize().to_pybytes()), part.num_rows

    def end_piece(self) -> bytes:
        """The last piece: the end-of-stream marker."""
        return END_OF_STREAM


MAX_DECODED_BYTES = 256 << 20
"""The most a client's stream may decode to: ten million rows of a symbol and an
``event_timestamp`` (the default ``max_export_rows``) take about 200 MiB."""


def read_ipc_table(data: bytes, field: str, *, max_rows: int) -> pa.Table:
    """An Arrow IPC stream sent by a client, of ``max_rows`` rows at most.

    Raises:
        ValidationError: naming ``field``: the bytes are not an Arrow IPC stream, or it declares
            more than ``max_rows`` rows or more than :data:`MAX_DECODED_BYTES` of data (checked
            before decoding).
    """
    try:
        rows, decoded = _declared_size(data)
        if rows > max_rows:
            raise ValidationError(f"{field}: {rows} rows, more than {max_rows}", field=field)
        if decoded > MAX_DECODED_BYTES:
            raise ValidationError(
                f"{field}: decodes to {decoded} bytes, more than {MAX_DECODED_BYTES}", field=field
            )
        with pa.ipc.open_stream(data) as reader:
            return reader.read_all()
    except (pa.ArrowException, OSError, struct.error) as exc:
        # ArrowException: every pyarrow error, its NotImplemented and Memory errors included.
        raise ValidationError(f"{field}: not an Arrow IPC stream: {exc}", field=field) from exc


def _declared_size(data: bytes) -> tuple[int, int]:
    """(rows, decoded body bytes) that the stream's record and dictionary batches declare."""
    rows = decoded = 0
    for message in pa.ipc.MessageReader.open_stream(data):
        if message.type not in ("record batch", "dictionary batch"):
            continue
        meta = message.metadata.to_pybytes()
        batch = _record_batch(meta, dictionary=message.type == "dictionary batch")
        body = memoryview(message.body) if message.body is not None else memoryview(b"")
        if message.type == "record batch":
            rows += batch.length
        for offset, length in batch.buffers:
            if offset < 0 or length < 0:  # or a sum could hide a large buffer
                raise struct.error("a buffer of negative offset or length")
            if batch.compressed and length >= 8:
                # A compressed buffer starts with its decoded length (-1: stored as it is).
                (size,) = struct.unpack_from("<q", body, offset)
                decoded += length - 8 if size < 0 else size
            else:
                decoded += length
    return rows, decoded


@dataclass(frozen=True)
class _BatchMeta:
    """What a RecordBatch table of Arrow's ``Message.fbs`` declares, read from its flatbuffer."""

    length: int
    buffers: list[tuple[int, int]]
    """(offset in the body, length) of each buffer."""
    compressed: bool


def _record_batch(meta: bytes, *, dictionary: bool) -> _BatchMeta:
    """Message.header (a DictionaryBatch's ``data``): length, buffers (offset, length), compression.

    Flatbuffers: a table starts with the signed offset back to its vtable; the vtable holds its
    own size, then each field's offset in the table (0: absent). Offsets to tables and vectors are
    unsigned and relative to where they are stored.
    """
    message = _table(meta, struct.unpack_from("<I", meta, 0)[0])
    header = _ref(meta, message(2))  # Message: version, header_type, header, ...
    if dictionary:
        header = _ref(meta, _table(meta, header)(1))  # DictionaryBatch: id, data, isDelta
    batch = _table(meta, header)  # RecordBatch: length, nodes, buffers, compression
    length = int(struct.unpack_from("<q", meta, batch(0))[0]) if batch(0) else 0
    if length < 0:
        raise struct.error("a negative row count")
    buffers: list[tuple[int, int]] = []
    if batch(2):
        vector = _ref(meta, batch(2))
        count = struct.unpack_from("<I", meta, vector)[0]
        buffers = [struct.unpack_from("<qq", meta, vector + 4 + 16 * i) for i in range(count)]
    return _BatchMeta(length, buffers, compressed=bool(batch(3)))


def _table(meta: bytes, position: int) -> Callable[[int], int]:
    """The absolute position of each field of the table at ``position`` (0 when absent)."""
    vtable = position - struct.unpack_from("<i", meta, position)[0]
    size = struct.unpack_from("<H", meta, vtable)[0]

    def field(index: int) -> int:
        slot = 4 + 2 * index
        offset = struct.unpack_from("<H", meta, vtable + slot)[0] if slot < size else 0
        return position + offset if offset else 0

    return field


def _ref(meta: bytes, position: int) -> int:
    """The table or vector that the offset stored at ``position`` points to."""
    if not position:
        raise struct.error("a required field is absent")
    return position + int(struct.unpack_from("<I", meta, position)[0])
