"""Predict's log handed to a writer process, at a few microseconds per call to the server.

The server's side of :mod:`featurestore.prediction_log.writer` (the protocol is described
there). A call is logged by appending one small tuple: its model, entities and scored rows by
token (each sent once while the server keeps it, :mod:`.scored_rows`), its request ids as the one
string they were drawn as, and its times. Every ``hand_over_s`` (5 ms) the calls gathered are
pickled into one frame and written to the child's stdin without waiting (the pipe is enlarged to
1 MiB; past it the event loop's transport holds the bytes). The child encodes the records
column-wise and produces them, on the other core: the serving loop no longer pays ~3.7 µs a
record for it.

Complete, not best effort, as :class:`~featurestore.prediction_log.PredictionLogger` is: every
answered Predict is logged once, unless it is counted. Records wait, bounded, while the child
starts or is started again (``max_waiting`` records: past that, calls are dropped and counted in
``dropped``), and while Kafka is slow the bytes not yet taken by the child are bounded too
(``max_unsent_bytes``). A child that dies is started again after a backoff; the records it had
not had acknowledged are counted in ``failed`` and said in the server's log. The child starts
with the first call logged: a server that never predicts starts none.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import weakref
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate

from featurestore.config import Settings
from featurestore.config import settings_env
from featurestore.events import PredictionLog
from featurestore.online import EntityKey
from featurestore.prediction_log.writer import CALL
from featurestore.prediction_log.writer import ENTITIES
from featurestore.prediction_log.writer import EVENTS
from featurestore.prediction_log.writer import FLUSH
from featurestore.prediction_log.writer import FORGET
from featurestore.prediction_log.writer import MODEL
from featurestore.prediction_log.writer import SCORED
from featurestore.prediction_log.writer import frame
from featurestore.prediction_log.writer import read_frame
from featurestore.service.child_process import ChildProcess
from featurestore.service.scored_rows import ScoredRows

__all__ = ["PredictionLogProcess", "entities_definition", "scored_definition"]

logger = logging.getLogger(__name__)

_HAND_OVER_S = 0.005
_MAX_WAITING = 200_000
_MAX_UNSENT_BYTES = 64 << 20
_MAX_TOKENS = 4096
_MAX_TOKEN_ROWS = 65_536
"""Per kind: the things the child knows by token, and their entity rows (the oldest forgotten
past either; the servicer keeps requests under the same bounds)."""
_PIPE_BYTES = 1 << 20
_FLUSH_S = 5.0
_STOP_S = 10.0
_RESTART_S = (0.5, 30.0)
"""Waits before starting a writer again: the first, and the longest."""
_YOUNG_S = 30.0
"""A writer that dies younger than this doubles the wait before the next."""
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass(frozen=True, slots=True)
class _Held:
    """A thing the child knows by ``token``."""

    thing: Callable[[], object]
    """The thing, or None once gone (a weak reference where it can be one)."""
    token: int
    rows: int


def _reference(thing: object) -> Callable[[], object]:
    try:
        return weakref.ref(thing)
    except TypeError:  # tuples: held (the servicer holds them too, as long)
        return lambda: thing


class _Child:
    """One writer process and what it was handed."""

    def __init__(
        self, process: ChildProcess, stdin: asyncio.WriteTransport, started_at: float
    ) -> None:
        self.process = process
        self.started_at = started_at
        self.stdin = stdin
        self.stdout = process.stdout
        self.handed = 0
        """Records written to its stdin."""
        self.counts = (0, 0, 0)
        """Its last report: sent, failed, dropped."""

    @property
    def unacknowledged(self) -> int:
        """Records handed to it that it has not yet reported as sent, failed or dropped."""
        return self.handed - sum(self.counts)


class PredictionLogProcess:
    """Logs Predict's calls through a writer process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        traced: bool = False,
        hand_over_s: float = _HAND_OVER_S,
        max_waiting: int = _MAX_WAITING,
        max_unsent_bytes: int = _MAX_UNSENT_BYTES,
    ) -> None:
        """Log to ``topic`` with ``settings``' Kafka and registry.

        ``traced``: each call's trace context goes with its records (the child's producer span
        continues the call's trace, and the records carry it in their headers).
        """
        self.topic = topic
        self._command = [sys.executable, "-m", "featurestore.prediction_log", topic]
        self._env = {**os.environ, **settings_env(settings)}
        self._traced = traced
        self._hand_over_s = hand_over_s
        self._max_waiting = max_waiting
        self._max_unsent_bytes = max_unsent_bytes
        self._child: _Child | None = None
        self._starting: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._closing = False
        self._restart_wait = _RESTART_S[0]
        self._not_before = 0.0
        self._gathered: list[tuple[Any, ...]] = []
        self._gathered_records = 0
        self._hand_over_at: asyncio.TimerHandle | None = None
        self._tokens: dict[int, dict[int, _Held]] = {MODEL: {}, ENTITIES: {}, SCORED: {}}
        self._token_rows = dict.fromkeys(self._tokens, 0)
        self._next_token = 0
        self._models: dict[tuple[str, str, tuple[str, ...]], tuple[str, str, tuple[str, ...]]] = {}
        self._flushes: dict[int, asyncio.Future[int]] = {}
        self._next_flush = 0
        self._definitions: dict[int, tuple[Any, ...]] = {}
        """The definition message of every token the child knows, by token."""
        self._sent = self._failed = self._dropped = 0
        """Counts of exited children, and records this side dropped."""

    @property
    def sent(self) -> int:
        """Records acknowledged by Kafka."""
        return self._sent + (self._child.counts[0] if self._child else 0)

    @property
    def failed(self) -> int:
        """Records Kafka did not take, that could not be encoded, or lost with a child."""
        return self._failed + (self._child.counts[1] if self._child else 0)

    @property
    def dropped(self) -> int:
        """Records dropped because too many were waiting (the child, Kafka or registry away)."""
        return self._dropped + (self._child.counts[2] if self._child else 0)

    def __len__(self) -> int:
        """Records logged and not yet acknowledged, sent, failed or dropped."""
        return self._gathered_records + (self._child.unacknowledged if self._child else 0)

    def log_call(
        self,
        model_name: str,
        model_version: str,
        features: tuple[str, ...],
        entities: tuple[EntityKey, ...],
        scored: ScoredRows,
        request_ids: str,
        request_time: int,
        response_time: int,
    ) -> None:
        """Log one fast-path call: a PredictionLog per entity; never blocks.

        ``request_ids``: the entities' ids joined, 32 hex digits each; times in epoch µs.
        """
        if self._gathered_records + len(entities) > self._max_waiting:
            self._drop(len(entities))
            return
        model_key = (model_name, model_version, features)
        model = self._token(MODEL, self._models.setdefault(model_key, model_key), _model, 0)
        rows = len(entities)
        entities_token = self._token(ENTITIES, entities, entities_definition, rows)
        scored_token = self._token(SCORED, scored, scored_definition, rows)
        self._gather(
            (
                CALL,
                model,
                entities_token,
                scored_token,
                request_ids,
                request_time,
                response_time,
                self._carrier(),
            ),
            len(entities),
        )

    def log(self, events: Sequence[PredictionLog]) -> None:
        """Log predictions given as events (Predict's general path); never blocks."""
        if self._gathered_records + len(events) > self._max_waiting:
            self._drop(len(events))
            return
        self._gather((EVENTS, list(events), self._carrier()), len(events))

    def _carrier(self) -> dict[str, str] | None:
        if not self._traced:
            return None
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier

    def _token(self, kind: int, thing: Any, message: Any, rows: int) -> int:
        """The token of ``thing`` (by identity), defining it for the child the first time.

        ``rows``: what its definition holds, in entity rows; each kind's table keeps at most
        :data:`_MAX_TOKENS` things and :data:`_MAX_TOKEN_ROWS` rows, the oldest forgotten.
        A thing that can be weakly referenced is (scored rows): the table does not keep it
        alive, only its definition's arrays.
        """
        table = self._tokens[kind]
        held = table.get(id(thing))
        if held is not None:
            if held.thing() is thing:
                return held.token
            self._forget(kind, id(thing))  # a thing gone, whose id this one has now
        while table and (
            len(table) >= _MAX_TOKENS or self._token_rows[kind] + rows > _MAX_TOKEN_ROWS
        ):
            self._forget(kind, next(iter(table)))
        token = self._next_token
        self._next_token += 1
        table[id(thing)] = _Held(_reference(thing), token, rows)
        self._token_rows[kind] += rows
        definition = self._definitions[token] = (kind, token, *message(thing))
        self._gathered.append(definition)
        return token

    def _forget(self, kind: int, key: int) -> None:
        forgotten = self._tokens[kind].pop(key)
        self._token_rows[kind] -= forgotten.rows
        del self._definitions[forgotten.token]
        self._gathered.append((FORGET, kind, forgotten.token))

    def _gather(self, message: tuple[Any, ...], records: int) -> None:
        self._gathered.append(message)
        self._gathered_records += records
        if self._child is None and self._starting is None and not self._closing:
            self._starting = asyncio.get_running_loop().create_task(self._start())
        if self._hand_over_at is None:
            loop = asyncio.get_running_loop()
            self._hand_over_at = loop.call_later(self._hand_over_s, self._hand_over)

    def _drop(self, records: int) -> None:
        self._dropped += records
        logger.warning("prediction log: %d records waiting already; dropped %d", len(self), records)

    def _hand_over(self) -> None:
        """Write the gathered messages to the child (they wait while it is not running)."""
        if self._hand_over_at is not None:
            self._hand_over_at.cancel()
            self._hand_over_at = None
        child = self._child
        if child is None or not self._gathered:
            return
        transport = child.stdin
        if transport.is_closing():
            return
        messages, self._gathered = self._gathered, []
        records, self._gathered_records = self._gathered_records, 0
        if transport.get_write_buffer_size() > self._max_unsent_bytes:
            # The child is behind (Kafka slow or away): keep the definitions, drop the calls.
            messages = [m for m in messages if m[0] not in (CALL, EVENTS)]
            self._drop(records)
            records = 0
        transport.write(frame(messages))
        child.handed += records

    async def _start(self) -> None:
        """Start the child, once :attr:`_not_before` has come (again while starts fail)."""
        try:
            loop = asyncio.get_running_loop()
            while not self._closing:
                await asyncio.sleep(max(0.0, self._not_before - loop.time()))
                # A pipe of our own (not asyncio's PIPE): its size can be set on every loop.
                read_end, write_end = os.pipe()
                with contextlib.suppress(OSError):  # bigger: fewer wake-ups, no buffering here
                    fcntl.fcntl(write_end, _F_SETPIPE_SZ, _PIPE_BYTES)
                try:
                    process = await ChildProcess.start(self._command, stdin=read_end, env=self._env)
                    break
                except OSError as exc:
                    os.close(write_end)
                    wait = self._back_off(quick_failure=True)
                    logger.error(
                        "prediction log: writer not started (%s); again in %.1fs", exc, wait
                    )
                finally:
                    os.close(read_end)
            else:
                return
            stdin, _ = await loop.connect_write_pipe(
                asyncio.BaseProtocol, os.fdopen(write_end, "wb", buffering=0)
            )
            child = _Child(process, stdin, loop.time())
            self._child = child
            self._reading = loop.create_task(self._read(child))
            self._hand_over()
        finally:
            self._starting = None

    async def _read(self, child: _Child) -> None:
        """Take the child's reports until it exits; then start another unless closing."""
        while True:
            try:
                flush_id, left, sent, failed, dropped = await read_frame(child.stdout)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            child.counts = (sent, failed, dropped)
            if flush_id is not None:
                future = self._flushes.pop(flush_id, None)
                if future is not None and not future.done():
                    future.set_result(left)
        code = await child.process.wait()
        lost = child.unacknowledged
        self._sent += child.counts[0]
        self._failed += child.counts[1] + lost
        self._dropped += child.counts[2]
        self._child = None
        for future in self._flushes.values():
            if not future.done():
                future.set_result(lost)
        self._flushes.clear()
        if self._closing:
            return
        logger.error(
            "prediction log: the writer process exited (code %s); %d records lost; starting "
            "another",
            code,
            lost,
        )
        # What the dead child knew, the next is told first (calls gathered since name it).
        self._gathered[:0] = list(self._definitions.values())
        loop = asyncio.get_running_loop()
        self._back_off(quick_failure=loop.time() - child.started_at < _YOUNG_S)
        if self._starting is None:
            self._starting = loop.create_task(self._start())

    def _back_off(self, *, quick_failure: bool) -> float:
        """Set when the next child may start; returns the wait.

        The wait doubles (up to ``_RESTART_S[1]``) while starts fail or children die young (a
        crash loop), and is back to ``_RESTART_S[0]`` after a child that lived.
        """
        if quick_failure:
            self._restart_wait = min(2 * self._restart_wait, _RESTART_S[1])
        else:
            self._restart_wait = _RESTART_S[0]
        self._not_before = asyncio.get_running_loop().time() + self._restart_wait
        return self._restart_wait

    async def flush(self, timeout_s: float = _FLUSH_S) -> int:
        """Wait until the records logged so far are acknowledged (bounded); returns those left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        starting = self._starting
        if starting is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(starting), timeout_s)
        child = self._child
        if child is None:
            return len(self)
        flush_id = self._next_flush
        self._next_flush += 1
        future: asyncio.Future[int] = loop.create_future()
        self._flushes[flush_id] = future
        self._gathered.append((FLUSH, flush_id, max(0.0, deadline - loop.time())))
        self._hand_over()
        try:
            # The child bounds its own wait; a margin for its answer to arrive.
            await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()) + 1)
        except TimeoutError:
            self._flushes.pop(flush_id, None)
            return len(self)
        return len(self)

    async def close(self) -> None:
        """End the child's input: it flushes (bounded) and exits; say what was not delivered."""
        starting = self._starting
        if starting is not None:
            if self._not_before > asyncio.get_running_loop().time():
                starting.cancel()  # waiting to start one again: none is to start now
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(starting), _STOP_S)
        self._hand_over()
        self._closing = True
        if self._hand_over_at is not None:
            self._hand_over_at.cancel()
        child = self._child
        if child is not None:
            child.stdin.close()
            try:
                await asyncio.wait_for(child.process.wait(), _STOP_S)
            except TimeoutError:
                logger.warning("prediction log: the writer did not exit; killing it")
                child.process.kill()
            if self._reading is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._reading, _STOP_S)
        left = len(self) + (child.unacknowledged if child is not None else 0)
        if left:
            logger.warning("%d prediction log records not delivered at shutdown", left)


def _model(model: tuple[str, str, tuple[str, ...]]) -> tuple[Any, ...]:
    return model


def entities_definition(entities: tuple[EntityKey, ...]) -> tuple[Any, ...]:
    """An ENTITIES message's payload: the join keys, and each entity's values in their order."""
    return (entities[0].join_keys, [entity.values for entity in entities])


def scored_definition(scored: ScoredRows) -> tuple[Any, ...]:
    """A SCORED message's payload: the logged values, their validity, scores and feature times."""
    return (scored.rows.matrix, scored.valid, scored.scores, scored.feature_times)
