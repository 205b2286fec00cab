"""The prediction log's writer: a child process of the gRPC server that encodes and produces.

Encoding a call's PredictionLog records and handing them to librdkafka costs ~3.7 µs a record
(~1.2 µs encoding, ~2.5 µs ``produce``) on this machine. In the serving process that was ~0.4 ms
of its event loop per 100-entity call, paid by whichever calls waited behind the hand-over: it
was what kept Predict's p99 above GetOnlineFeatures' (bench/RESULTS.md, predict). Here the same
:class:`~.logger.PredictionLogger` runs in a process of its own, on the other core, and
the server hands it each call in a few bytes (:mod:`featurestore.service.prediction_log_process`).

The protocol, parent to child on stdin, is a stream of frames (a 4-byte little-endian length,
then a pickled list of messages, trusted: both ends are this package). What does not change
between calls is sent once and named by a token afterwards:

- ``(MODEL, token, name, version, features)``;
- ``(ENTITIES, token, join_keys, entity_values)``: one request's entities;
- ``(SCORED, token, values, valid, scores, feature_times)``: what a model version derived from
  one read of them (:mod:`featurestore.service.scored_rows`), kept while the rows are unchanged;
- ``(FORGET, kind, token)``: the parent dropped a token of that kind (its tables are bounded);
- ``(CALL, model, entities, scored, request_ids, request_time, response_time, carrier)``: a
  fast-path call, its request ids joined (32 hex digits each) and ``carrier`` its W3C trace
  context (None: not traced);
- ``(EVENTS, events, carrier)``: a general-path call's :class:`PredictionLog` events;
- ``(FLUSH, flush_id, timeout_s)``: answer once what was logged before it is acknowledged.

Child to parent on stdout, frames of ``(flush_id, left, sent, failed, dropped)``: the answer to a
flush (``left``: records not acknowledged), and the same counts with ``flush_id`` None every
:data:`REPORT_S`. At the end of stdin (the server closed it, or died) the child flushes (bounded)
and exits.

``python -m featurestore.prediction_log TOPIC``, with the server's settings in its
environment (:func:`~featurestore.config.settings_env`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import propagate
from opentelemetry import trace

from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.events import ConfluentSchemaStore
from featurestore.prediction_log.encoding import PredictionRows
from featurestore.prediction_log.encoding import split_ids
from featurestore.prediction_log.logger import PredictionLogger
from featurestore.telemetry import log_to_stderr
from featurestore.telemetry import tracer_provider

__all__ = [
    "CALL",
    "ENTITIES",
    "EVENTS",
    "FLUSH",
    "FORGET",
    "MODEL",
    "REPORT_S",
    "SCORED",
    "LoggedCalls",
    "frame",
    "read_frame",
    "run_as_background_work",
]

logger = logging.getLogger(__name__)

MODEL, ENTITIES, SCORED, FORGET, CALL, EVENTS, FLUSH = range(7)
REPORT_S = 0.5
"""How often the child reports its counts unasked."""
_LENGTH = struct.Struct("<I")
Model = tuple[str, str, tuple[str, ...]]
"""A model version's name, version and feature names."""
_NICENESS = 19
"""The lowest nice value, where the kernel refuses SCHED_IDLE (:func:`run_as_background_work`)."""


def frame(messages: object) -> bytes:
    """One frame of the protocol: length, then the pickled ``messages``."""
    body = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next frame's messages (raises :class:`asyncio.IncompleteReadError` at the end)."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))


class LoggedCalls:
    """The child's tables: what the parent defined by token, and each call's rows from them."""

    def __init__(self) -> None:
        """Empty tables."""
        self._tables: dict[int, dict[int, tuple[Any, ...]]] = {MODEL: {}, ENTITIES: {}, SCORED: {}}

    def define(self, message: tuple[Any, ...]) -> None:
        """Apply a MODEL, ENTITIES, SCORED or FORGET message."""
        kind = message[0]
        if kind == FORGET:
            # Tolerant: after a restart the parent may forget what this child was never told.
            self._tables[message[1]].pop(message[2], None)
        elif kind in self._tables:
            self._tables[kind][message[1]] = message[2:]
        else:
            raise ValueError(f"prediction log writer: unknown message kind {kind!r}")

    def call(
        self, message: tuple[Any, ...]
    ) -> tuple[tuple[str, str, tuple[str, ...]], PredictionRows]:
        """A CALL message's model (name, version, features) and rows."""
        _, model, entities, scored, request_ids, request_time, response_time, _carrier = message
        join_keys, entity_values = self._tables[ENTITIES][entities]
        values, valid, scores, feature_times = self._tables[SCORED][scored]
        rows = PredictionRows(
            request_ids=split_ids(request_ids),
            join_keys=join_keys,
            entity_values=entity_values,
            values=values,
            valid=valid,
            scores=scores,
            feature_times=feature_times,
            request_time=request_time,
            response_time=response_time,
        )
        return self._tables[MODEL][model], rows


def _context(carrier: dict[str, str] | None) -> Any:
    return None if carrier is None else propagate.extract(carrier)


def _report(flush_id: int | None, left: int, log: PredictionLogger) -> None:
    # Small frames to a parent that always reads: a blocking write is the simple, safe one.
    with contextlib.suppress(BrokenPipeError):  # the parent is gone: nobody to tell
        os.write(sys.stdout.fileno(), frame((flush_id, left, log.sent, log.failed, log.dropped)))


async def _report_every(log: PredictionLogger) -> None:
    while True:
        await asyncio.sleep(REPORT_S)
        _report(None, len(log), log)


async def serve(settings: Settings, topic: str) -> None:
    """Log what arrives on stdin to ``topic`` until its end, then flush and report."""
    provider = tracer_provider(settings.tracing, "featurestore-grpc")
    tracer = (
        None
        if isinstance(provider, trace.NoOpTracerProvider)
        else provider.get_tracer("featurestore.service")
    )
    store = ConfluentSchemaStore.from_settings(settings.schema_registry)
    # The server gathers 5 ms of calls into each frame: hand a frame's calls over to librdkafka
    # as soon as it is read (the next turn of the loop), not after gathering 5 ms more.
    log = PredictionLogger(settings.kafka.connection, topic, store, tracer=tracer, hand_over_s=0.0)
    calls = LoggedCalls()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    reporting = asyncio.create_task(_report_every(log))
    try:
        while True:
            try:
                messages: Sequence[tuple[Any, ...]] = await read_frame(reader)
            except asyncio.IncompleteReadError:
                break  # the server closed the pipe, or died
            for message in messages:
                kind = message[0]
                if kind == FLUSH:
                    left = await log.flush(message[2])
                    _report(message[1], left, log)
                    continue
                try:
                    if kind == CALL:
                        (name, version, features), rows = calls.call(message)
                        log.log_rows(name, version, features, rows, _context(message[-1]))
                    elif kind == EVENTS:
                        log.log(message[1], _context(message[2]))
                    else:
                        calls.define(message)
                except Exception:  # one call's records must not cost the others theirs
                    logger.exception("prediction log writer: a message not applied")
    finally:
        reporting.cancel()
        await log.close()
        _report(None, len(log), log)
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def main(argv: Sequence[str]) -> None:
    """``python -m featurestore.prediction_log TOPIC``: serve until stdin ends."""
    log_to_stderr()
    (topic,) = argv
    policy = run_as_background_work()
    logger.info("writing %s as background work (%s)", topic, policy)
    asyncio.run(serve(load_settings(), topic))


def run_as_background_work() -> str:
    """Put every thread of this process (and those it starts later) under SCHED_IDLE.

    Where it competes for a core with the server answering calls, the scheduler should prefer
    the server. At nice 19 a waking server thread still waited for the writer's time slice now
    and then; a SCHED_IDLE thread is preempted at once by any other. Measured side by side
    (bench/RESULTS.md, predict, 2026-12-05): Predict's p99 over GetOnlineFeatures' at 100 entities,
    median of 12 family-rounds, +1.83/+1.79 ms at nice 19 against +1.52/+1.42 ms under SCHED_IDLE.
    The records only wait (bounded) meanwhile; a writer starved for long enough fills the pipe and
    the server's bound, and the server counts what it then drops. Where the kernel refuses the
    policy (or has none), nice 19. Returns which one applies.
    """
    try:
        for thread in Path("/proc/self/task").iterdir():  # the policy is per thread on Linux
            with contextlib.suppress(ProcessLookupError):  # the thread ended since the listing
                os.sched_setscheduler(int(thread.name), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # no SCHED_IDLE (not Linux), or refused
        os.nice(_NICENESS)
        return f"nice {_NICENESS}"
    return "SCHED_IDLE"
