"""Fixtures of the processors' end-to-end modules (``test_processors``, ``test_kafka_engine``,
``test_cluster``).

Each of them compares its runs with one whole local-mode Spark processor over the same real
trades. The tables' checksums cover lineage (partition offsets) and created times (the records'
Kafka timestamps), so the runs compared must read one topic: the session ingests it once and
runs that baseline once, for whichever of the modules run, in any order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from featurestore.config import Settings
from tests.e2e.processors_support import BASELINE
from tests.e2e.processors_support import World
from tests.e2e.processors_support import dead_letter_ends
from tests.e2e.processors_support import ingest_trades_and_junk


@pytest.fixture(scope="session")
def trades_world(stack: Settings) -> Iterator[World]:
    """The session's topic of real trades (:data:`~tests.e2e.processors_support.TRADE_FILES`,
    EVOL's trades in two schema versions, undecodable records), its run :data:`BASELINE` read to
    the end; dropped at the session's end. Modules take their own runs' names from it
    (:meth:`World.for_module`)."""
    run = uuid.uuid4().hex[:8]
    topic = f"e2e-trades-{run}"
    trades, junk = ingest_trades_and_junk(stack, topic)
    dead_start = dead_letter_ends(stack)  # before any processor has read this topic's junk
    world = World(stack, run, topic, len(trades) + junk, junk, trades, dead_start)
    try:
        world.process(BASELINE, on_executors=False)  # the step on the driver (local mode's default)
        yield world
    finally:
        world.clean_up()


@pytest.fixture(scope="module")
def world(trades_world: World, request: pytest.FixtureRequest) -> Iterator[World]:
    """This module's runs of the session's topic, named with the module's ``WORLD_PREFIX``
    (``e2e`` if it sets none)."""
    world = trades_world.for_module(getattr(request.module, "WORLD_PREFIX", "e2e"))
    yield world
    world.clean_up()
