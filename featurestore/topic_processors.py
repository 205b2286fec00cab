"""The processors a stack runs, one per event topic: their names and topics.

The market's three topics (trades, quotes, metrics), then every other topic that the default
project's applied stream views read (:func:`applied_topics`): a topic added in ``registry/``
gets its processor without code. The stack starts them (``featurestore/stack/processors.py``)
and the monitor measures their lag: both read this list, anew at each call.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from featurestore.config import Settings

__all__ = ["TopicProcessor", "applied_topics", "topic_processors"]


class TopicProcessor(NamedTuple):
    """One processor of the stack and the topic it reads."""

    name: str
    """``features`` for trades (the default of every ``featurestore processors`` command),
    ``features-quotes``, ``features-metrics``, then ``features-<topic>``."""
    topic: str


def topic_processors(settings: Settings) -> list[TopicProcessor]:
    """The market's three processors, then one for each other applied topic, sorted."""
    named = [
        TopicProcessor("features", settings.topics.trades),
        TopicProcessor("features-quotes", settings.topics.quotes),
        TopicProcessor("features-metrics", settings.topics.metrics),
    ]
    market = {p.topic for p in named}
    return named + [
        TopicProcessor(f"features-{t}", t) for t in applied_topics(settings) if t not in market
    ]


def applied_topics(settings: Settings) -> tuple[str, ...]:
    """The topics the default project's applied stream views read, sorted.

    Read from the definitions kept beside the stack (:mod:`featurestore.definitions.snapshot`,
    written by every apply): no Feast, no server. None kept yet, or unreadable: none.
    """
    from featurestore.definitions import PROJECT
    from featurestore.definitions.snapshot import decode_definitions
    from featurestore.definitions.snapshot import snapshot_file

    try:
        kept = json.loads(snapshot_file(settings, PROJECT).read_text())
        definitions = decode_definitions(kept["definitions"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ()
    return tuple(sorted({v.stream.source.topic for v in definitions.views if v.stream}))
