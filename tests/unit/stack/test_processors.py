from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from featurestore.config import Settings
from featurestore.config import load_settings
from featurestore.definitions import PROJECT
from featurestore.definitions import Definitions
from featurestore.definitions import market_definitions
from featurestore.definitions.snapshot import encode_definitions
from featurestore.definitions.snapshot import snapshot_file
from featurestore.stack import Stack
from featurestore.stack.processors import ProcessorService
from featurestore.stack.prometheus_config import stack_targets
from featurestore.topic_processors import applied_topics


def test_the_stack_runs_one_processor_per_event_topic(tmp_path: Path) -> None:
    settings = load_settings(
        {"FEATURESTORE_DATA_DIR": str(tmp_path), "FEATURESTORE_TOPICS__QUOTES": "q"}
    )
    stack = Stack(settings)
    found = {p.processor: p for p in stack.event_processors}
    assert list(found) == ["features", "features-quotes", "features-metrics"]
    assert {p.topic for p in found.values()} == {"trades", "q", "metrics"}
    assert stack.processors is found["features"]  # the name tests, docs and the scorer use
    names = [c.name for c in stack.components]
    assert len(names) == len(set(names))  # status, down and PID files tell them apart
    assert {"processors", "processors-features-quotes", "processors-features-metrics"} <= set(names)
    for processor in found.values():
        command = processor.command()
        assert command[command.index("--name") + 1] == processor.processor
        assert command[command.index("--topic") + 1] == processor.topic
        assert processor.marker() in " ".join(command)
        assert processor in stack.services
    assert len({p.process.pid_file for p in found.values()}) == 3


def test_a_processor_started_by_hand_is_the_stack_s_own(tmp_path: Path) -> None:
    # `featurestore processors start --name features-quotes` builds the same component.
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    by_hand = ProcessorService(settings, "features-quotes", ("--topic", "quotes"))
    ours = Stack(settings).component("processors-features-quotes")
    assert isinstance(ours, ProcessorService)
    assert by_hand.process.pid_file == ours.process.pid_file
    assert ProcessorService(settings).topic == settings.topics.trades


def _keep(settings: Settings, definitions: Definitions) -> None:
    """What ``registry apply`` keeps beside the stack (only the definitions are read here)."""
    path = snapshot_file(settings, PROJECT)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"definitions": encode_definitions(definitions)}))


def test_a_topic_the_applied_views_read_gets_a_processor_of_its_own(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    before = Stack(settings)
    assert applied_topics(settings) == ()  # nothing applied yet
    assert [p.topic for p in before.event_processors] == ["trades", "quotes", "metrics"]

    market = market_definitions()
    orders = market_definitions(source_topic="orders")
    _keep(settings, replace(market, views=(*market.views, *orders.views[:1])))
    assert applied_topics(settings) == ("orders", "trades")
    after = Stack(settings)
    found = {p.processor: p for p in after.event_processors}
    assert list(found) == ["features", "features-quotes", "features-metrics", "features-orders"]
    command = found["features-orders"].command()
    assert command[command.index("--topic") + 1] == "orders"
    ports = [int(p.args[p.args.index("--metrics-port") + 1]) for p in found.values()]
    assert ports == [settings.metrics.processors_port + i for i in range(4)]
    assert found["features-orders"] in after.services
    assert after.component("processors-features-orders") is found["features-orders"]
    assert "processors-features-orders" in stack_targets(settings)  # Prometheus scrapes it

    # A stack built before the apply (make run's) takes the topic in once told.
    assert before.follow_applied_topics() == ["processors-features-orders"]
    assert [p.processor for p in before.event_processors][-1] == "features-orders"
    assert before.services.index(before.event_processors[-1]) == 2 + 3  # after the others
    assert before.follow_applied_topics() == []
    # Not a stack of services: nothing is started (the supervisor does not run here).
    assert before.start_new_processors({"orders"}) == []


def test_kept_definitions_that_cannot_be_read_add_no_processor(tmp_path: Path) -> None:
    settings = load_settings({"FEATURESTORE_DATA_DIR": str(tmp_path)})
    path = snapshot_file(settings, PROJECT)
    path.parent.mkdir(parents=True)
    for text in ("{", '{"definitions": {"views": 3}}', "[]"):
        path.write_text(text)
        assert applied_topics(settings) == ()
        assert len(Stack(settings).event_processors) == 3
