"""A streaming processor that rides through outages: what ``featurestore processors run`` runs.

Either engine (:attr:`ProcessorOptions.engine`: Spark's micro-batches or the Kafka consumer)
is started by :func:`start_processor` and waited on the same way.

Two levels of waiting, both with the capped, jittered backoff of :mod:`featurestore.resilience`:

- inside a batch, each partition's step retries while PostgreSQL, Redis, Kafka (dead letters)
  or the registry is away (:class:`processors.partition_job.PartitionRunner`). The query keeps
  running; the engine's next batch waits for this one. Each attempt starts from the state table's
  committed rows, so the batch ends as if nothing had happened.
- around the engine: when it cannot start (PostgreSQL or Kafka away at start) or it ends with a
  transient failure (Spark's Kafka consumer timed out while the broker was away), it is
  started again. Every start reads from the state table's next offsets, so nothing is lost
  and nothing applied twice.

A failure retrying cannot fix (bad configuration, a schema that cannot be read, a partition
fenced by another application, a bug) ends :func:`run_resilient_stream` with that error; the
command prints it and exits non-zero. While it waits the health listener gets the reasons
(the ready file says NOT_SERVING; ``featurestore stack status`` shows them).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from featurestore.config import Settings
from featurestore.heap import freeze_startup_heap
from featurestore.resilience import Backoff
from featurestore.resilience import Health
from featurestore.resilience import Retrier
from featurestore.resilience import Stopped
from featurestore.resilience import outage_of
from processors.handle import EngineExitedError
from processors.handle import ProcessorHandle
from processors.metrics import ProcessorMetrics
from processors.options import ProcessorOptions
from processors.wiring import ProcessorWiring

__all__ = ["run_resilient_stream", "start_processor"]

logger = logging.getLogger(__name__)


def start_processor(
    settings: Settings, options: ProcessorOptions, wiring: ProcessorWiring | None = None
) -> ProcessorHandle:
    """Start ``options.engine`` in this process."""
    if options.engine == "kafka":
        from processors.kafka_engine import start_consumer

        return start_consumer(settings, options, wiring)
    from processors.spark.stream import start_stream

    return start_stream(settings, options, wiring)


def run_resilient_stream(
    settings: Settings,
    options: ProcessorOptions,
    stop: threading.Event,
    *,
    health: Health,
    backoff: Backoff | None = None,
    metrics: ProcessorMetrics | None = None,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Run the streaming processor until ``stop`` is set; returns how many times it started.

    ``on_started`` is called each time the engine runs (the CLI writes its ready file).

    Raises:
        FeatureStoreError: a failure that is not transient (configuration, schema, fencing).
        RuntimeError: the query failed for a reason that is not transient.
    """
    backoff = backoff or Backoff()
    wiring = ProcessorWiring(metrics=metrics, retrier=Retrier(backoff, health, stop))
    sys.setswitchinterval(settings.processors.switch_interval_ms / 1000.0)
    starts = failures = 0
    while not stop.is_set():
        try:
            handle = start_processor(settings, options, wiring)
        except Exception as exc:
            failures = _wait_out(exc, health, backoff, stop, failures, "starting the query")
            continue
        starts += 1
        failures = 0
        if starts == 1:  # imports and definitions: long-lived, out of the full collections
            freeze_startup_heap()
        health.up()
        if on_started is not None:
            on_started()
        try:
            handle.wait(stop)
        except Exception as exc:
            if stop.is_set() and isinstance(exc, EngineExitedError):
                logger.warning("stopping: %s", exc)
                break
            if stop.is_set() and _stopped(exc):
                break
            failures = _wait_out(exc, health, backoff, stop, failures, "the query")
    return starts


def _wait_out(
    exc: Exception, health: Health, backoff: Backoff, stop: threading.Event, failures: int,
    what: str,
) -> int:  # fmt: skip
    """Report a transient failure and wait its backoff; raise any other."""
    outage = outage_of(exc)
    if outage is None:
        raise exc
    failures += 1
    health.down(outage)
    wait = backoff.delay(failures)
    logger.warning("%s: %s away (%s); starting the query again in %.1f s", what,
                outage.dependency, outage.reason, wait)  # fmt: skip
    stop.wait(wait)
    return failures


def _stopped(exc: BaseException) -> bool:
    """Whether ``exc`` only says that a step gave up waiting because the process stops."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Stopped):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
