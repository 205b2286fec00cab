"""What a processor is started with besides its options: the objects either engine is wired to.

:class:`ProcessorOptions` says what to compute (names, topic, Spark and state settings, from the
command line); :class:`ProcessorWiring` holds what only code can give (definitions read already,
hooks, metrics, the retrier). Both engines (:func:`processors.kafka_engine.start_consumer`,
:func:`processors.spark.stream.start_stream`) and :func:`processors.resilient.start_processor`
take the same two, and resolve the views the same way (:meth:`ProcessorWiring.views`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featurestore.config import Settings
from featurestore.definitions import Definitions
from featurestore.definitions.snapshot import cached_definitions
from featurestore.resilience import Retrier
from processors.metrics import ProcessorMetrics
from processors.options import ProcessorOptions
from processors.recorder import RowsHook
from processors.views import MaterializedViews

__all__ = ["ProcessorWiring"]


@dataclass(frozen=True)
class ProcessorWiring:
    """The objects a processor runs with; every field may be left out.

    Attributes:
        definitions: the feature definitions; read from the Feast registry when not given
            (through the kept snapshot, so that a restart after a crash does not wait for
            Feast's import unless the registry changed).
        hooks: called with each batch's new rows of ``hook_view`` after they are stored.
        hook_view: the view whose rows the hooks get (the anomaly scorer reads window-end rows).
        metrics: records each batch's report and the engine's lag (Prometheus).
        retrier: each partition's step waits out outages of PostgreSQL, Redis, Kafka and the
            registry with it (:mod:`featurestore.resilience`); None: the first failure stops
            the engine.
    """

    definitions: Definitions | None = None
    hooks: Sequence[RowsHook] = ()
    hook_view: str | None = None
    metrics: ProcessorMetrics | None = None
    retrier: Retrier | None = None

    @property
    def rows_view(self) -> str | None:
        """The view whose rows the batches keep for the hooks (None when there are no hooks)."""
        return self.hook_view if self.hooks else None

    def views(self, settings: Settings, options: ProcessorOptions) -> MaterializedViews:
        """The views of ``options``' topic, with the hooks' view checked against them.

        Raises:
            ConfigurationError: no stream view reads the topic, or an unknown hook view.
        """
        topic = options.topic_of(settings)
        definitions = self.definitions or cached_definitions(settings, options.project)
        views = MaterializedViews.resolve(definitions, topic)
        views.check_hooks(self.hooks, self.hook_view)
        return views
