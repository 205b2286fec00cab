"""The feature engine: declared stream feature views compiled and executed, free of Spark.

:func:`compile_topic` turns the applied definitions of a topic into a :class:`TopicPlan`;
:func:`process_events` applies a partition's next events to its :class:`PartitionFeatureState`
and returns every view's rows. The Spark jobs in :mod:`processors.spark` only feed it.
"""

from __future__ import annotations

from processors.features.engine import EventBatch
from processors.features.engine import FeatureOutput
from processors.features.engine import advance_chain
from processors.features.engine import advance_watermark
from processors.features.engine import feed_chain
from processors.features.engine import process_chain
from processors.features.engine import process_events
from processors.features.plan import TopicPlan
from processors.features.plan import ViewChain
from processors.features.plan import ViewPlan
from processors.features.plan import compile_chain
from processors.features.plan import compile_topic
from processors.features.state import EventChunk
from processors.features.state import PartitionFeatureState
from processors.features.state import StateCounts

__all__ = [
    "EventBatch",
    "EventChunk",
    "FeatureOutput",
    "PartitionFeatureState",
    "StateCounts",
    "TopicPlan",
    "ViewChain",
    "ViewPlan",
    "advance_chain",
    "advance_watermark",
    "compile_chain",
    "compile_topic",
    "feed_chain",
    "process_chain",
    "process_events",
]
