"""A server follows the registry: new definitions are served when its digest has changed and
settled, and only then; a read that fails keeps the old ones and is tried again after a pause."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.definitions.snapshot import KeptDefinitions
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import NotFoundError
from featurestore.online.catalog import LiveCatalog
from featurestore.online.catalog import catalog_from_definitions
from featurestore.service.definitions_follow import DefinitionsFollow

OLD = market_definitions("p")
NEW = replace(OLD, services=())


class Registry:
    """What the follow reads: a digest, and the definitions filed under it."""

    def __init__(self) -> None:
        self.digest: str | None = "a"
        self.definitions = OLD
        self.failure: Exception | None = None
        self.reads = 0
        self.now = 0.0

    def read(self) -> KeptDefinitions:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return KeptDefinitions(self.definitions, self.digest)


def _follow(registry: Registry, served: list[Definitions]) -> DefinitionsFollow:
    async def use(definitions: Definitions) -> None:
        served.append(definitions)

    return DefinitionsFollow(
        held="a",
        current_digest=lambda: registry.digest,
        read=registry.read,
        use=use,
        interval_s=5.0,
        clock=lambda: registry.now,
    )


def test_definitions_are_read_again_only_when_the_digest_changes() -> None:
    registry, served = Registry(), list[Definitions]()
    follow = _follow(registry, served)
    assert not asyncio.run(follow.check_once())
    assert registry.reads == 0
    registry.digest, registry.definitions = "b", NEW
    assert not asyncio.run(follow.check_once())  # first seen: an apply may be under way
    registry.digest = "c"
    assert not asyncio.run(follow.check_once())  # it was: another object registered
    assert registry.reads == 0
    assert asyncio.run(follow.check_once())  # settled
    assert served == [NEW]
    assert not asyncio.run(follow.check_once())  # held now
    assert registry.reads == 1


def test_a_registry_without_an_answer_changes_nothing() -> None:
    registry, served = Registry(), list[Definitions]()
    follow = _follow(registry, served)
    registry.digest = None  # down, or the project emptied
    assert not asyncio.run(follow.check_once())
    assert (registry.reads, served) == (0, [])


def test_a_failed_read_keeps_the_old_definitions_and_is_tried_again_after_a_pause() -> None:
    registry, served = Registry(), list[Definitions]()
    follow = _follow(registry, served)
    registry.digest, registry.failure = "b", BackendUnavailableError("registry: refused")
    assert not asyncio.run(follow.check_once())  # seen
    assert not asyncio.run(follow.check_once())  # settled, read, failed
    assert (registry.reads, served) == (1, [])
    registry.now = 9.0
    assert not asyncio.run(follow.check_once())  # within the first pause (10 s): not read
    assert registry.reads == 1
    registry.now = 10.0
    assert not asyncio.run(follow.check_once())  # read again, fails again: the pause doubles
    registry.now = 29.0
    assert not asyncio.run(follow.check_once())
    assert registry.reads == 2
    registry.failure, registry.definitions, registry.now = None, NEW, 30.0
    assert asyncio.run(follow.check_once())
    assert served == [NEW]


def test_another_change_is_read_at_once_even_during_a_pause() -> None:
    registry, served = Registry(), list[Definitions]()
    follow = _follow(registry, served)
    registry.digest, registry.failure = "b", NotFoundError("gone")
    assert not asyncio.run(follow.check_once())
    assert not asyncio.run(follow.check_once())
    assert registry.reads == 1
    registry.digest, registry.failure, registry.definitions = "c", None, NEW
    assert not asyncio.run(follow.check_once())
    assert asyncio.run(follow.check_once())
    assert served == [NEW]


def test_the_follow_checks_in_the_background_until_stopped() -> None:
    registry, served = Registry(), list[Definitions]()

    async def run() -> None:
        follow = _follow(registry, served)
        follow.interval_s = 0.01
        follow.start()
        registry.digest, registry.definitions = "b", NEW
        for _ in range(200):
            if served:
                break
            await asyncio.sleep(0.01)
        await follow.stop()

    asyncio.run(run())
    assert served == [NEW]


def test_a_live_catalog_serves_its_replacement_and_tells_its_readers() -> None:
    live = LiveCatalog(catalog_from_definitions(OLD))
    told: list[str] = []
    live.on_change(lambda: told.append("changed"))
    assert live.feature_service("market_features_v1")
    live.replace(catalog_from_definitions(NEW))
    assert told == ["changed"]
    with pytest.raises(NotFoundError, match="market_features_v1"):
        live.feature_service("market_features_v1")
    assert live.view("rolling_1m").name == "rolling_1m"
    with pytest.raises(ConfigurationError, match="project 'q'"):
        live.replace(catalog_from_definitions(market_definitions("q")))
    assert live.project == "p"
