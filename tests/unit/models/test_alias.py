"""AliasFollower: the loaded version an alias points at, swapped in when the alias moves."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from dataclasses import field

import pytest

from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError
from models.alias import AliasFollower
from models.registry import ModelRef
from tests.unit.models.fake_registry import DictRegistry


@dataclass
class _Follower(AliasFollower[str]):
    """Loads ``"loaded <version>"``; a version in ``broken`` fails to load."""

    registry_: DictRegistry
    broken: set[str] = field(default_factory=set)
    loads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.registry_, "m", poll_interval_s=0.01)  # type: ignore[arg-type]

    def _load(self, ref: ModelRef) -> str:
        self.loads.append(ref.version)
        if ref.version in self.broken:
            raise ValidationError(f"{ref.uri} is not a model of this kind", field="model")
        return f"loaded {ref.version}"


def _wait(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.01)


def test_the_thread_swaps_in_a_promotion() -> None:
    registry = DictRegistry({"champion": "1"})
    with _Follower(registry) as follower:
        assert (follower.current, follower.version) == ("loaded 1", "1")
        registry.versions["champion"] = "2"
        _wait(lambda: follower.version == "2")
        assert follower.current == "loaded 2"
    assert follower.loads == ["1", "2"]  # the unchanged alias is not loaded again
    assert not any(t.name == "alias-m" for t in threading.enumerate())


def test_a_version_that_fails_to_load_is_not_used(caplog: pytest.LogCaptureFixture) -> None:
    registry = DictRegistry({"champion": "1"})
    follower = _Follower(registry, broken={"2"})
    registry.versions["champion"] = "2"
    with caplog.at_level(logging.WARNING, logger="models.alias"), follower:
        _wait(lambda: follower.loads.count("2") >= 2)  # tried again at each poll
        assert (follower.current, follower.version) == ("loaded 1", "1")
        registry.versions["champion"] = "3"
        _wait(lambda: follower.version == "3")
    assert "keeping m version 1: models:/m/2 is not a model of this kind" in caplog.text


def test_no_version_under_the_alias_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="model 'm' has no 'champion' version to score with"):
        _Follower(DictRegistry({}))
