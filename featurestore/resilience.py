"""Riding through outages: what a retry can fix, capped jittered backoff, and health.

A long-running process of the store (a processor, the scorer, the gRPC server, ingest) meets
two kinds of failure:

- **transient**: a backend (Kafka, PostgreSQL, Redis, the schema registry, MLflow) went away,
  or a connection to it broke. Waiting fixes it. The process keeps running, says NOT_SERVING
  with the reason (:class:`Health`), waits a capped, jittered backoff (:class:`Backoff`) and
  tries the same work again (:class:`Retrier`). The work must be safe to repeat: a processor's
  partition step is (its records before the state table's ``next_offset`` are skipped, and a
  failed transaction left nothing), so nothing is lost and nothing applied twice.
- **anything else**: bad configuration, a schema that cannot be read, a fenced partition, a bug.
  Trying again would do the same thing again, so the process stops with a message naming it.

:func:`outage_of` is the one place that tells them apart. It walks the exception's chain
(``raise ... from``): a :class:`~featurestore.errors.FeatureStoreError` decides by its own
``retryable``; below the store's errors, the libraries' connection errors (psycopg's
``OperationalError``, redis-py's ``ConnectionError``/``TimeoutError``, a retriable
``KafkaException``, an ``OSError`` of the socket kind, Kafka's Java ``TimeoutException`` in a
Spark query's failure) are transient. Nothing else is.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import TypeVar

from featurestore.error_maps.postgres import refused_login
from featurestore.errors import FeatureStoreError

__all__ = ["Backoff", "Health", "Outage", "Retrier", "Stopped", "outage_of"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEPENDENCIES = ("kafka", "postgres", "redis", "schema-registry", "mlflow")
"""The backends a process may wait for, as health reasons name them."""

_NAMED = (
    ("redis", "redis"),
    ("postgres", "postgres"),
    ("offline store", "postgres"),
    ("psycopg", "postgres"),
    ("schema registry", "schema-registry"),
    ("registry", "schema-registry"),
    ("mlflow", "mlflow"),
    ("kafka", "kafka"),
)
"""Words in a message or module name, and the backend they name (first match wins)."""

_SPARK_KAFKA_TRANSIENT = (
    "org.apache.kafka.common.errors.TimeoutException",
    "org.apache.kafka.common.errors.DisconnectException",
    "org.apache.kafka.common.errors.NetworkException",
    "org.apache.kafka.common.errors.NotLeaderOrFollowerException",
    "org.apache.kafka.common.errors.LeaderNotAvailableException",
)
"""Java exceptions in a Spark query's failure that mean Kafka was away for a while."""


@dataclass(frozen=True)
class Outage:
    """A transient failure: which backend is away, and what was seen."""

    dependency: str
    """One of :data:`DEPENDENCIES`, or ``"backend"`` when the error does not say which."""
    reason: str


def outage_of(exc: BaseException) -> Outage | None:
    """The outage ``exc`` reports, or None when retrying cannot fix it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _judge(current)
        if verdict is not None:
            if not verdict:
                return None
            return Outage(_dependency(current, exc), _one_line(exc))
        current = current.__cause__ or current.__context__
    return None


def _judge(exc: BaseException) -> bool | None:
    """True: transient; False: not; None: this link of the chain does not say."""
    if isinstance(exc, FeatureStoreError):
        return exc.retryable
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith("psycopg"):
        if refused_login(exc):
            return False  # a wrong password or a pg_hba.conf refusal: retrying will not fix it
        return name == "OperationalError" or _subclass_named(exc, "OperationalError")
    if module.startswith("redis"):
        return _subclass_named(exc, "ConnectionError") or _subclass_named(exc, "TimeoutError")
    if module.startswith(("confluent_kafka", "cimpl")) and name == "KafkaException":
        error = exc.args[0] if exc.args else None
        retriable = getattr(error, "retriable", None)
        return bool(retriable()) if callable(retriable) else None
    if module.startswith("pyspark"):
        text = str(exc)
        return True if any(marker in text for marker in _SPARK_KAFKA_TRANSIENT) else None
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if module.startswith(("requests", "urllib3")) and ("Connection" in name or "Timeout" in name):
        return True
    return None


def _subclass_named(exc: BaseException, name: str) -> bool:
    return any(klass.__name__ == name for klass in type(exc).__mro__)


def _dependency(link: BaseException, top: BaseException) -> str:
    module = type(link).__module__ or ""
    for word, dependency in (("psycopg", "postgres"), ("redis", "redis"), ("pyspark", "kafka")):
        if module.startswith(word):
            return dependency
    if module.startswith(("confluent_kafka", "cimpl")):
        return "kafka"
    text = f"{top} {link}".lower()
    for word, dependency in _NAMED:
        if word in text:
            return dependency
    return "backend"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


@dataclass(frozen=True)
class Backoff:
    """Exponential waits between attempts, capped, each drawn from its upper ``jitter`` share.

    With the defaults the waits are about 0.5, 1, 2, 4, 4 ... s (each drawn from its upper
    half): a backend that comes back is used again within ``max_s``, and processes that lost it
    at the same moment do not all knock at once. The cap is what a recovery waits at most after
    the backend is back (it was 10 s: 7.5 s on average added to each recovery of the chaos
    run), and an attempt every 2-4 s while it is away costs one connection attempt.
    """

    initial_s: float = 0.5
    max_s: float = 4.0
    multiplier: float = 2.0
    jitter: float = 0.5
    """The random share of each wait: 0.5 waits between half and all of the backoff."""

    def __post_init__(self) -> None:
        """Refuse bounds under which a wait could be zero, negative or shrink (ValueError)."""
        if not 0 < self.initial_s <= self.max_s or self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(
                "backoff: need 0 < initial_s <= max_s, multiplier >= 1, 0 <= jitter <= 1"
            )

    def delay(self, attempt: int, draw: float | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first failure)."""
        draw = random.random() if draw is None else draw
        full = min(self.max_s, self.initial_s * self.multiplier ** max(0, attempt - 1))
        return full * (1.0 - self.jitter * draw)


@dataclass
class Health:
    """What a process reports: SERVING, or NOT_SERVING with the reason per backend away.

    ``on_change`` is called (under no lock of this object's) with the new reasons each time
    they change: a processor rewrites its ready file, the gRPC server sets its health service.
    """

    on_change: Callable[[dict[str, str]], None] | None = None
    _reasons: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def serving(self) -> bool:
        """Whether no backend is known to be away."""
        with self._lock:
            return not self._reasons

    def reasons(self) -> dict[str, str]:
        """The backends away, each with what was seen."""
        with self._lock:
            return dict(self._reasons)

    def down(self, outage: Outage) -> None:
        """Report ``outage`` (again, or with a newer reason)."""
        with self._lock:
            known = self._reasons.get(outage.dependency)
            self._reasons[outage.dependency] = outage.reason
            changed = dict(self._reasons) if known != outage.reason else None
        if changed is not None:
            if known is None:
                logger.warning("NOT_SERVING: %s is away: %s", outage.dependency, outage.reason)
            self._notify(changed)

    def up(self, dependency: str | None = None) -> None:
        """``dependency`` (None: every one) answers again."""
        with self._lock:
            if dependency is None:
                gone, self._reasons = list(self._reasons), {}
            else:
                gone = [dependency] if self._reasons.pop(dependency, None) is not None else []
            now = dict(self._reasons)
        if gone:
            logger.warning("%s back%s", ", ".join(gone), "; SERVING" if not now else "")
            self._notify(now)

    def _notify(self, reasons: dict[str, str]) -> None:
        if self.on_change is not None:
            self.on_change(reasons)


class Stopped(Exception):  # noqa: N818 - not an error: the process was asked to stop
    """Raised by :meth:`Retrier.call` when ``stop`` is set while it waits."""


@dataclass
class Retrier:
    """Calls a function until it succeeds, waiting out transient failures.

    A failure that :func:`outage_of` does not call transient is raised at once. While a
    transient one lasts, :attr:`health` says NOT_SERVING with its reason; the first success
    after it says SERVING again.
    """

    backoff: Backoff = field(default_factory=Backoff)
    health: Health = field(default_factory=Health)
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to give up waiting: the call then raises :class:`Stopped`."""
    sleep: Callable[[threading.Event, float], bool] = field(
        default=lambda event, seconds: event.wait(seconds)
    )

    def call(self, func: Callable[[], T], what: str) -> T:
        """``func()``, again after each transient failure; ``what`` names it in the log."""
        attempt = 0
        while True:
            try:
                result = func()
            except Exception as exc:
                outage = outage_of(exc)
                if outage is None:
                    raise
                attempt += 1
                self.health.down(outage)
                wait = self.backoff.delay(attempt)
                logger.info("%s: %s away (attempt %d), again in %.1f s", what, outage.dependency,
                         attempt, wait)  # fmt: skip
                if self.sleep(self.stop, wait):
                    raise Stopped(f"{what}: stopped while {outage.dependency} was away") from exc
                continue
            if attempt:
                self.health.up()
            return result
