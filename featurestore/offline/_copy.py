"""Arrow <-> PostgreSQL through ``COPY`` in CSV: fast on both ends, no per-row Python.

CSV is used rather than COPY's binary format because pyarrow reads and writes it in C++
(multi-threaded), and PostgreSQL prints ``double precision`` with the shortest exact digits, so
floats survive the round trip bit for bit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

__all__ = ["copy_in", "copy_out"]

_COPY_BLOCK = 1 << 20


def copy_in(
    cur: psycopg.Cursor[tuple[object, ...]],
    target: sql.Composable,
    columns: Sequence[str],
    table: pa.Table | pa.RecordBatch,
) -> None:
    """Append ``table`` (columns in the order of ``columns``) to ``target`` with COPY."""
    selected = table.select(list(columns))
    if isinstance(selected, pa.Table):
        selected = _without_empty_chunks(selected)
    buffer = io.BytesIO()
    pacsv.write_csv(selected, buffer, pacsv.WriteOptions(include_header=False))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    view = buffer.getbuffer()
    with cur.copy(statement) as copy:
        for start in range(0, len(view), _COPY_BLOCK):
            copy.write(view[start : start + _COPY_BLOCK])


def _without_empty_chunks(table: pa.Table) -> pa.Table:
    """Drop empty chunks: after one, the CSV writer of pyarrow 25 writes NUL bytes."""
    batches = table.to_batches()
    if all(batch.num_rows for batch in batches):
        return table
    return pa.Table.from_batches([b for b in batches if b.num_rows], schema=table.schema)


def copy_out(
    cur: psycopg.Cursor[tuple[object, ...]], query: sql.Composable, schema: pa.Schema
) -> pa.Table:
    """Run ``query`` through ``COPY ... TO STDOUT`` and parse the rows as ``schema``.

    PostgreSQL's CSV writes NULL as an unquoted empty field and quotes an empty string, so that
    is the only null read back: Arrow's default null spellings (``NA``, ``null``, ``NaN``...)
    would turn text features of those values into nulls, and float NaN into null.
    """
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
    buffer = io.BytesIO()
    with cur.copy(statement) as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell() == 0:
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=schema.names, block_size=16 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
