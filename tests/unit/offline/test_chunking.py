from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from featurestore.definitions import market_definitions
from featurestore.offline import PostgresOfflineStore

DEFS = market_definitions()


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"symbol": ["A"] * n})


@pytest.mark.parametrize(
    ("rows", "chunk_rows", "parallelism", "expected"),
    [
        (1_000_000, None, 2, 250_000),  # capped: memory per chunk stays bounded
        (300_000, None, 2, 150_000),  # an even share per connection
        (20_000, None, 2, 10_000),
        (3_000, None, 2, 5_000),  # small inputs are not cut finer than this
        (20_000, 4_000, 2, 4_000),  # an explicit chunk size is a maximum
        (20_000, 50_000, 4, 5_000),
    ],
)
def test_inputs_of_known_size_are_shared_out(
    rows: int, chunk_rows: int | None, parallelism: int, expected: int
) -> None:
    store = PostgresOfflineStore("", DEFS, chunk_rows=chunk_rows, parallelism=parallelism)
    assert store._chunk_size(_frame(rows)) == expected
    assert store._chunk_size(pa.Table.from_pandas(_frame(rows))) == expected


def test_streamed_inputs_use_the_chunk_size(tmp_path: Path) -> None:
    assert PostgresOfflineStore("", DEFS)._chunk_size(tmp_path / "rows.parquet") == 100_000
    assert PostgresOfflineStore("", DEFS, chunk_rows=7)._chunk_size(iter([])) == 7
    with pytest.raises(ValueError, match="positive"):
        PostgresOfflineStore("", DEFS, chunk_rows=0)
