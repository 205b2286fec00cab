"""An Arrow IPC stream cut into gRPC-sized pieces: the schema first, then one record batch each.

Concatenating the pieces in order gives one valid Arrow IPC stream (end-of-stream marker
included). Batches are sliced so that each piece stays well under gRPC's default 4 MiB message
limit, whatever ``batch_rows`` the caller asked for.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def read_ipc_table(data: bytes, field: str) -> pa.Table:
    """An Arrow IPC stream sent by a client; ValidationError naming ``field`` if it is not one."""
    try:
        with pa.ipc.open_stream(data) as reader:
            return reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{field}: not an Arrow IPC stream: {exc}", field=field) from exc
