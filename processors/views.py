"""Which feature views the processors materialize: the applied stream views of one topic.

Nothing here names a view: the job takes every view whose stream source reads its topic,
compiles them (:func:`processors.features.compile_topic`, which refuses what it cannot
compute, naming the view and field) and writes to their tables and online keys.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace

from featurestore.definitions import Definitions
from featurestore.definitions import FeatureView
from featurestore.definitions import StreamComputation
from featurestore.definitions.validate import topic_entity
from featurestore.errors import ConfigurationError
from featurestore.online import StaticCatalog
from featurestore.online.catalog import catalog_from_definitions
from processors.features import TopicPlan
from processors.features import ViewChain
from processors.features import compile_chain
from processors.features import compile_topic

__all__ = ["MaterializedViews"]


@dataclass(frozen=True)
class MaterializedViews:
    """The stream views of one topic, as the registry defines them, and their plan."""

    definitions: Definitions
    topic: str
    views: tuple[FeatureView, ...]
    plan: TopicPlan
    """The views computed from the topic's events together: the fields every record is
    decoded into (a chained view reads what its upstream view reads)."""
    plans: dict[str, ViewChain]
    """Each view alone: each has its own state and next offset (a new view starts at 0), a
    chained view its own copy of its upstream views' stages."""

    @classmethod
    def resolve(cls, definitions: Definitions, topic: str) -> MaterializedViews:
        """The views computed from ``topic``; ConfigurationError when there are none or bad."""
        views = tuple(
            v for v in definitions.views if v.stream is not None and v.stream.source.topic == topic
        )
        if not views:
            raise ConfigurationError(
                f"project {definitions.project!r}: no stream feature view reads topic {topic!r};"
                " run `featurestore registry apply`"
            )
        join_key = definitions.entity(topic_entity(topic, views)).join_key
        by_name = {v.name: v for v in definitions.views}
        chains = [compile_chain(v, by_name, join_key) for v in views]
        # Upstream views first: a step feeds a chained view its upstream's rows.
        plans = {c.view.name: c for c in sorted(chains, key=lambda c: len(c.stages))}
        direct = [v for v in views if v.stream is not None and v.stream.upstream is None]
        resolved = cls(definitions, topic, views, compile_topic(direct, join_key), plans)
        resolved._fingerprints  # noqa: B018  (hashed here, on the driver: see _fingerprints)
        return resolved

    @property
    def join_key(self) -> str:
        """The entity's join key column."""
        return self.plan.join_key

    def view(self, name: str) -> FeatureView:
        """The view called ``name``."""
        for view in self.views:
            if view.name == name:
                return view
        raise ConfigurationError(f"topic {self.topic!r} has no stream view {name!r}")

    def check_hooks(self, hooks: Sequence[object], hook_view: str | None) -> None:
        """Refuse hooks without ``hook_view``, or a ``hook_view`` that is not one of these views.

        Both engines check this before they claim partitions or start Spark.
        """
        if not hooks:
            return
        if hook_view is None:
            raise ConfigurationError("hooks need hook_view: the view whose new rows they get")
        self.view(hook_view)

    def fingerprint(self, name: str) -> str:
        """What a view's stored rows mean: its computation and features, hashed.

        A view whose fingerprint changed under the same name would mix rows of two meanings
        in one table; the processor refuses to continue its state (apply a new view instead).
        Of the source's computed columns, only those the view reads count
        (:meth:`~featurestore.definitions.StreamComputation.read_columns`): a column added for
        another view of the topic changes nothing here. A chained view's includes its upstream
        views'.
        """
        return self._fingerprints[name][0]

    def former_fingerprint(self, name: str) -> str:
        """The fingerprint as states stored before 2026-12-07 hold it: of every source column.

        A state stored so continues (and is stored again with :meth:`fingerprint`) when the
        source's columns have not changed since.
        """
        return self._fingerprints[name][1]

    @functools.cached_property
    def _fingerprints(self) -> dict[str, tuple[str, str]]:
        """Each view's fingerprint and former fingerprint, hashed once.

        :meth:`resolve` computes them, so a job shipped to Spark's executors carries them: a
        task asks for them (its worker's runner is keyed by them) and parses no expression.
        """
        return {
            v.name: (
                self._fingerprint(v.name, every_column=False),
                self._fingerprint(v.name, every_column=True),
            )
            for v in self.views
        }

    def _fingerprint(self, name: str, *, every_column: bool) -> str:
        view = self.view(name)
        assert view.stream is not None
        stream = view.stream
        columns = stream.source.columns if every_column else stream.read_columns()
        parts: tuple[object, ...] = (
            sorted((f.name, f.value_type.value) for f in view.features),
            stream.source.topic, stream.source.entity_field, stream.source.timestamp_field,
            stream.source.id_field, stream.source.watermark_delay,
            sorted(columns.items()), _Verbatim(_aggregations(stream)),
            sorted(stream.derived.items()), stream.tile, stream.running,
        )  # fmt: skip
        if stream.upstream is not None:
            upstream = self._fingerprint(stream.upstream, every_column=every_column)
            parts = (*parts, stream.upstream, upstream)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def online_catalog(self) -> StaticCatalog:
        """The online store's view of this topic's views, with TTL 0 as never.

        No feature services: a service may name views of other topics.
        """
        return catalog_from_definitions(
            replace(self.definitions, views=tuple(self.views), services=())
        )


def _aggregations(stream: StreamComputation) -> str:
    """The aggregations' text, as fingerprinted before ``last_tiles`` existed.

    Where it is unset the text is unchanged, so the states stored then stay valid.
    """
    return repr(stream.aggregations).replace(", last_tiles=None", "")


class _Verbatim(str):
    """Text that stands in a fingerprint as written (its repr is itself)."""

    def __repr__(self) -> str:
        return str(self)
