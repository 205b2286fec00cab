from __future__ import annotations

from pathlib import Path

from featurestore.config import load_settings
from featurestore.stack import Stack
from featurestore.stack.processors import ProcessorService


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
