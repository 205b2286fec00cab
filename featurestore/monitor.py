"""``featurestore monitor``: what no process can report about itself, measured on a schedule.

- Consumer lag of each processor (``metrics.lag_processors``; by default the stack's, one per
  event topic, a topic applied since included), from the state table and the
  topic (:func:`processors.metrics.consumer_lag`), every ``metrics.lag_interval_s``: it goes on
  growing while a processor is down, which is when the lag alert matters;
- PSI of each input of each watched model (``metrics.drift_models``, by default every registered
  model that has a champion; the version of alias ``champion``) over the
  last ``metrics.drift_window_minutes`` against its training set
  (:func:`models.monitoring.measure_drift`, what ``featurestore drift`` prints), every
  ``metrics.drift_interval_s``;
- and, not measurements but schedules all the same: the offline partitions past each view's
  retention are dropped (:mod:`featurestore.offline.retention`) every
  ``postgres.retention_interval_s``, and the offline tables' column copies that are missing,
  inexact or stale are rebuilt (:mod:`featurestore.offline.column_copy`) every
  ``postgres.column_copy_interval_s``, on a thread of their own; each exact copy's ``until``
  and rows are exported (``featurestore_offline_column_copy_until_seconds``, ``..._rows``).

Lag and drift are exported as gauges (``featurestore_consumer_lag_records``,
``featurestore_consumer_lag_seconds``, ``featurestore_drift_psi``); a measurement that fails is
logged and the last values stay exported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions
from opentelemetry.metrics import Observation

from featurestore.config import Settings
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError
from featurestore.errors import ValidationError

__all__ = ["Monitor"]

logger = logging.getLogger(__name__)


class Monitor:
    """Measures lag and drift and exports the last values as gauges."""

    def __init__(
        self, settings: Settings, provider: metrics.MeterProvider, project: str | None = None
    ) -> None:
        """Measure the store of ``settings``; export gauges on ``provider``."""
        self.settings = settings
        self.project = project
        """The Feast project whose definitions drift is measured with (None: the default)."""
        self.lag_records: dict[tuple[str, str], int] = {}
        self.lag_seconds: dict[tuple[str, str], float] = {}
        self.psi: dict[tuple[str, str, str], float] = {}
        """By (model, version, input)."""
        self._passed_over: dict[str, str] = {}
        """Models found in the registry that cannot be watched, with why (said once)."""
        meter = provider.get_meter("featurestore.monitor")
        meter.create_observable_gauge(
            "featurestore.consumer.lag_records",
            callbacks=[self._observe(self.lag_records, ("processor", "topic"))],
            description="Records of the topic a processor has not applied yet",
        )
        meter.create_observable_gauge(
            "featurestore.consumer.lag",
            unit="s",
            callbacks=[self._observe(self.lag_seconds, ("processor", "topic"))],
            description="Event time between the newest record and the first one not applied",
        )
        self.copy_until: dict[tuple[str], float] = {}
        self.copy_rows: dict[tuple[str], float] = {}
        """By view: the exact column copy's ``until`` (Unix time) and rows."""
        meter.create_observable_gauge(
            "featurestore.offline.column_copy.until",
            unit="s",
            callbacks=[self._observe(self.copy_until, ("view",))],
            description="End of the past an exact column copy holds (exports merge before it)",
        )
        meter.create_observable_gauge(
            "featurestore.offline.column_copy.rows",
            callbacks=[self._observe(self.copy_rows, ("view",))],
            description="Rows an exact column copy holds",
        )
        meter.create_observable_gauge(
            "featurestore.drift.psi",
            callbacks=[self._observe(self.psi, ("model", "version", "input"))],
            description="Population stability index of a model input, live window vs training",
        )

    @staticmethod
    def _observe(
        values: Mapping[Any, float], names: tuple[str, ...]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for key, value in list(values.items()):
                yield Observation(value, dict(zip(names, key, strict=True)))

        return callback

    def measure_lag(self) -> None:
        """Measure every watched processor's lag once (and drop dead processes' target files)."""
        from featurestore.telemetry import prune_targets
        from featurestore.telemetry import targets_dir
        from featurestore.topic_processors import topic_processors
        from processors.metrics import consumer_lag

        prune_targets(targets_dir(self.settings))
        watched = self.settings.metrics.lag_processors
        if watched is None:
            watched = tuple(p.name for p in topic_processors(self.settings))
        measured = consumer_lag(self.settings, watched)
        # A processor no longer watched (its topic's views removed) stops being exported: its
        # last lag would keep ConsumerLagHigh on. The dicts stay the gauges' own.
        kept = {(lag.processor, lag.topic) for lag in measured}
        for values in (self.lag_records, self.lag_seconds):
            for key in [key for key in values if key not in kept]:
                del values[key]
        for lag in measured:
            self.lag_records[(lag.processor, lag.topic)] = lag.records
            self.lag_seconds[(lag.processor, lag.topic)] = lag.seconds

    def measure_drift(self) -> None:
        """Recompute the PSI of every watched model's inputs once.

        Each model on its own: one that cannot be measured (not registered, its reference
        unreadable) is logged (:meth:`_not_measured`) and the others are measured all the same.
        The values of a model no longer watched (its champion removed, or a new champion
        without a drift reference) stop being exported.
        """
        from featurestore.definitions import PROJECT
        from featurestore.definitions.snapshot import cached_definitions
        from featurestore.offline import PostgresOfflineStore
        from models import monitoring
        from models.registry import ModelRegistry

        settings = self.settings
        definitions = cached_definitions(settings, self.project or PROJECT)
        registry = ModelRegistry(settings.mlflow.tracking_uri)
        window = timedelta(minutes=settings.metrics.drift_window_minutes)
        named = settings.metrics.drift_models
        models = registry.with_alias() if named is None else named
        for gone in {key[0] for key in self.psi} - set(models):
            self._forget(gone)
        with PostgresOfflineStore.from_settings(settings, definitions) as store:
            for model in models:
                try:
                    report = monitoring.measure_drift(
                        store, settings.postgres.dsn, registry, model, window=window
                    )
                except FeatureStoreError as exc:
                    if self._not_measured(model, exc, found=named is None):
                        self._forget(model)
                    continue
                except Exception:  # a fault of one model's: the others are measured all the same
                    logger.warning("drift of %s: not measured this time", model, exc_info=True)
                    continue
                self._passed_over.pop(model, None)
                # The measured version's values replace the model's: a promoted version's old
                # values would otherwise stay exported, and max by (model) keep the alert on.
                self._forget(model)
                for feature in report.features:
                    self.psi[(model, str(report.ref.version), feature.feature)] = feature.psi

    def _forget(self, model: str) -> None:
        for key in [key for key in self.psi if key[0] == model]:
            del self.psi[key]

    def _not_measured(self, model: str, exc: FeatureStoreError, *, found: bool) -> bool:
        """Log why ``model``'s drift was not measured, as loudly as it deserves.

        A window too young to measure is no fault (INFO). Nor is a model found in the registry
        that cannot be watched (no drift reference, no inputs): said once, at INFO, until its
        reason changes. A model the settings name that cannot be measured is a WARNING.
        Returns whether the model cannot be watched (its last values are then stale).
        """
        young = isinstance(exc, ValidationError) and exc.field == "window"
        unwatchable = isinstance(exc, NotFoundError) or (
            isinstance(exc, ValidationError) and exc.field == "model"
        )
        if found and unwatchable:
            if self._passed_over.get(model) != str(exc):
                self._passed_over[model] = str(exc)
                logger.info("drift of %s: not watched: %s", model, exc)
            return True
        logger.log(logging.INFO if young else logging.WARNING,
                   "drift of %s: not measured this time: %s", model, exc)  # fmt: skip
        return unwatchable

    def apply_retention(self) -> None:
        """Drop the offline partitions past each view's retention once."""
        import psycopg

        from featurestore.definitions import PROJECT
        from featurestore.definitions.snapshot import cached_definitions
        from featurestore.offline.retention import apply_retention
        from featurestore.offline.retention import describe

        definitions = cached_definitions(self.settings, self.project or PROJECT)
        with psycopg.connect(self.settings.postgres.dsn, autocommit=True) as conn:
            for dropped in apply_retention(conn, definitions.views):
                logger.info("retention: dropped %s", describe(dropped))

    def refresh_column_copies(self) -> None:
        """Rebuild the offline tables' column copies that are missing, inexact or stale."""
        from featurestore.definitions import PROJECT
        from featurestore.definitions.snapshot import cached_definitions
        from featurestore.offline.column_copy import column_copy_root
        from featurestore.offline.column_copy import exact_copies
        from featurestore.offline.column_copy import refresh_copies

        root = column_copy_root(self.settings)
        if root is None:
            return
        definitions = cached_definitions(self.settings, self.project or PROJECT)
        dsn = self.settings.postgres.dsn
        max_rows = self.settings.postgres.column_copy_max_rows
        for meta in refresh_copies(dsn, definitions, root, max_rows=max_rows):
            logger.info("column copy of %s: %d rows before %s", meta.view, meta.rows, meta.until)
        exact = exact_copies(dsn, definitions, root)
        self.copy_until.clear()
        self.copy_rows.clear()
        for meta in exact:
            self.copy_until[(meta.view,)] = meta.until_time.timestamp()
            self.copy_rows[(meta.view,)] = meta.rows

    def run(self, stop: threading.Event) -> None:
        """Measure (and apply retention) on schedule until ``stop`` is set.

        The column copies are rebuilt on a thread of their own: a rebuild reads a table's whole
        settled past (seconds to minutes), which must not hold back the lag and drift gauges.
        """
        copies = threading.Thread(
            target=_every,
            args=(stop, "column copies", self.refresh_column_copies,
                  self.settings.postgres.column_copy_interval_s),
            name="column-copies",
            daemon=True,
        )  # fmt: skip
        copies.start()
        try:
            self._measure_on_schedule(stop)
        finally:
            copies.join(timeout=5)

    def _measure_on_schedule(self, stop: threading.Event) -> None:
        cfg = self.settings.metrics
        now = time.monotonic()
        schedule = [
            ("consumer lag", self.measure_lag, cfg.lag_interval_s, now),
            ("drift", self.measure_drift, cfg.drift_interval_s, now),
            ("retention", self.apply_retention, self.settings.postgres.retention_interval_s, now),
        ]
        while not stop.is_set():
            for i, (what, task, interval, due) in enumerate(schedule):
                if time.monotonic() >= due:
                    _logged(what, task)
                    schedule[i] = (what, task, interval, time.monotonic() + interval)
            next_due = min(due for *_, due in schedule)
            stop.wait(max(0.0, next_due - time.monotonic()))


def _every(stop: threading.Event, what: str, task: Callable[[], None], interval: float) -> None:
    while not stop.is_set():
        _logged(what, task)
        stop.wait(interval)


def _logged(what: str, measure: Callable[[], None]) -> None:
    began = time.monotonic()
    try:
        measure()
    except Exception as exc:  # one failed measurement must not end the monitor
        logger.warning("%s: not measured this time: %s", what, exc)
        return
    logger.debug("%s measured in %.2f s", what, time.monotonic() - began)
