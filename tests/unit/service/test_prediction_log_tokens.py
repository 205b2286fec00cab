"""The server's side of the prediction log's protocol: tokens defined once, bounded, replayable.

Pure bookkeeping, no writer process: what :class:`PredictionLogProcess` queues for the child
(``_gathered``), read back through the child's own tables (:class:`LoggedCalls`).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from featurestore.config import load_settings
from featurestore.prediction_log import writer
from featurestore.service import prediction_log_process
from featurestore.service.prediction_log_process import PredictionLogProcess


class _Thing:
    """Something that can be weakly referenced, as scored rows can."""

    def __init__(self, name: str) -> None:
        self.name = name


def _log() -> PredictionLogProcess:
    return PredictionLogProcess(load_settings(), "predictions")


def _definition(thing: Any) -> tuple[Any, ...]:
    return (thing.name,)


def test_a_thing_is_defined_once_and_named_by_its_token_after() -> None:
    log = _log()
    a, b = _Thing("a"), _Thing("b")
    tokens = [log._token(writer.SCORED, t, _definition, 10) for t in (a, b, a, a, b)]
    assert tokens[0] == tokens[2] == tokens[3] != tokens[1] == tokens[4]
    assert log._gathered == [(writer.SCORED, tokens[0], "a"), (writer.SCORED, tokens[1], "b")]


def test_each_table_is_bounded_by_rows_and_forgets_its_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prediction_log_process, "_MAX_TOKEN_ROWS", 25)
    log = _log()
    things = [_Thing(str(i)) for i in range(4)]
    tokens = [log._token(writer.SCORED, t, _definition, 10) for t in things]
    forgets = [m for m in log._gathered if m[0] == writer.FORGET]
    # 10 rows each, 25 at most: each new one past the second forgets the oldest.
    assert forgets == [(writer.FORGET, writer.SCORED, tokens[0]),
                       (writer.FORGET, writer.SCORED, tokens[1])]  # fmt: skip
    assert sorted(log._definitions) == tokens[2:]
    assert log._token_rows[writer.SCORED] == 20
    # The child, told the same messages in order, knows exactly the last two.
    calls = writer.LoggedCalls()
    for message in log._gathered:
        calls.define(message)
    assert set(calls._tables[writer.SCORED]) == set(tokens[2:])
    # A forgotten thing used again is defined again, under a new token.
    again = log._token(writer.SCORED, things[0], _definition, 10)
    assert again not in tokens and again in log._definitions


def test_the_table_does_not_keep_scored_rows_alive() -> None:
    log = _log()
    thing = _Thing("gone")
    log._token(writer.SCORED, thing, _definition, 1)
    (held,) = log._tokens[writer.SCORED].values()
    assert held.thing() is thing
    del thing
    gc.collect()
    assert held.thing() is None


def test_frames_round_trip() -> None:
    messages = [(writer.CALL, 1, 2, 3, "ab" * 16, 10, 11, None), (writer.FLUSH, 0, 5.0)]

    async def read(data: bytes) -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        first = await writer.read_frame(reader)
        with pytest.raises(asyncio.IncompleteReadError):
            await writer.read_frame(reader)
        return first

    assert asyncio.run(read(writer.frame(messages))) == messages


def test_starts_that_fail_wait_twice_as_long_each_time_and_a_child_that_lived_resets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prediction_log_process, "_RESTART_S", (0.01, 0.04))

    async def run() -> list[float]:
        log = _log()
        log._command = ["/nonexistent/prediction-log-writer"]  # every start fails
        waits: list[float] = []
        back_off = log._back_off

        def recorded(*, quick_failure: bool) -> float:
            waits.append(back_off(quick_failure=quick_failure))
            return waits[-1]

        monkeypatch.setattr(log, "_back_off", recorded)
        log.log([])
        await asyncio.sleep(0.3)
        await log.close()
        assert back_off(quick_failure=False) == 0.01, "after a child that lived: the first wait"
        return waits

    waits = asyncio.run(run())
    assert waits[:4] == [0.02, 0.04, 0.04, 0.04], waits
