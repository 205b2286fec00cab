"""Definitions kept beside the stack are used only while Feast's registry holds the same rows.

On the shared stack's PostgreSQL, under a project of the test's own and a data folder of its
own: the first read goes through Feast, the next does not; an ``apply`` that changes a view,
or a damaged file, sends the next read through Feast again.
"""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from featurestore.apply import apply_definitions
from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions import load_definitions
from featurestore.definitions import market_definitions
from featurestore.definitions.snapshot import cached_definitions
from featurestore.definitions.snapshot import snapshot_file

pytestmark = pytest.mark.integration


@pytest.fixture
def project(stack: Settings) -> Iterator[str]:
    name = f"fs_snapshot_{uuid.uuid4().hex[:8]}"
    yield name
    defs = market_definitions(name, table_prefix=f"{name}_")
    with psycopg.connect(stack.postgres.dsn, autocommit=True) as conn:
        for view in defs.views:
            conn.execute(f'DROP TABLE IF EXISTS "{view.source.table}" CASCADE')


def test_feast_is_read_again_only_when_the_registry_changed(
    stack: Settings, project: str, tmp_path: Path
) -> None:
    settings = stack.model_copy(update={"data_dir": tmp_path})
    reads: list[str] = []

    def load(s: Settings, p: str) -> Definitions:
        reads.append(p)
        return load_definitions(s, p)

    defs = market_definitions(project, table_prefix=f"{project}_", ttl=timedelta(0))
    apply_definitions(stack, defs)
    assert cached_definitions(settings, project, load) == defs
    assert cached_definitions(settings, project, load) == defs
    assert len(reads) == 1 and snapshot_file(settings, project).exists()

    changed = market_definitions(project, table_prefix=f"{project}_", ttl=timedelta(hours=2))
    apply_definitions(stack, changed)
    assert cached_definitions(settings, project, load) == changed
    assert len(reads) == 2

    snapshot_file(settings, project).write_text("{")
    assert cached_definitions(settings, project, load) == changed
    assert cached_definitions(settings, project, load) == changed
    assert len(reads) == 3


def test_reading_and_applying_close_feasts_connections(stack: Settings, project: str) -> None:
    """Feast's SQL registry never closes its pooled connections; the store's reads do."""
    defs = market_definitions(project, table_prefix=f"{project}_")
    gc.collect()  # what earlier tests left to the collector warns now, not in the recording
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        apply_definitions(stack, defs)
        assert load_definitions(stack, project) == defs
        gc.collect()
    unclosed = [str(w.message) for w in caught if "psycopg" in str(w.message)]
    assert unclosed == []
