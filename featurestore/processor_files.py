"""Where a processor keeps its files in the data folder, for the processor and whoever watches it.

``<data_dir>/processors/<name>/`` holds its ready file (``ready.json``, written once it serves),
its status files (``status.json``, or ``status-<instance>.json`` for each application of several
that split a topic) and, on a single machine, Spark's scratch space; its output goes to
``<data_dir>/processors/<name>.log`` when the local stack or a test starts it.
"""

from __future__ import annotations

from pathlib import Path

from featurestore.config import Settings

__all__ = ["processor_dir", "processor_log", "ready_file", "status_file"]


def processor_dir(settings: Settings, name: str) -> Path:
    """The folder of processor ``name``: ready file, status files, Spark scratch space."""
    return settings.data_dir.resolve() / "processors" / name


def ready_file(settings: Settings, name: str) -> Path:
    """The file a processor writes once it serves: ``{"pid": ...}`` and what it waits for."""
    return processor_dir(settings, name) / "ready.json"


def status_file(settings: Settings, name: str, instance: str | None = None) -> Path:
    """The status file of processor ``name``, or of its application ``instance`` of several."""
    file = "status.json" if instance is None else f"status-{instance}.json"
    return processor_dir(settings, name) / file


def processor_log(settings: Settings, name: str) -> Path:
    """Where the output of processor ``name`` goes when the stack or a test starts it."""
    return processor_dir(settings, name).parent / f"{name}.log"
