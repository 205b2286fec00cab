"""What an executor's Python worker runs, for the start-up check on a cluster.

Kept out of :mod:`processors.spark` (whose package imports the driver's side: the session, the
stack's jars) so that unpickling the check on an executor imports only what a task imports:
the step with its I/O (:mod:`processors.partition_job`), which the check thereby proves
importable in the executors' environment.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

import processors.partition_job  # noqa: F401 - the check proves a task's imports work

__all__ = ["describe_python"]


def describe_python(_: Iterator[Any]) -> Iterator[str]:
    """``mapPartitions``' function: this worker's host, Python version, interpreter, prefix."""
    yield json.dumps([socket.gethostname(), list(sys.version_info[:3]), sys.executable, sys.prefix])
