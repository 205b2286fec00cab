"""What the fuzz tests of the gRPC API, the registry's REST routes and the ingest readers share.

Their hypothesis settings (bounded, so that all of them together run in about a minute, and
without an example database: CI clones afresh, and a folder in the work tree helps nobody), and
the check that an answer sent to a client carries no Python exception class name nor traceback.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck
from hypothesis import settings

__all__ = ["FUZZ", "leaks"]

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    # The live server or registry is a fixture started once per test and shared by its examples
    # on purpose (starting one per example would cost seconds each).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Settings of every fuzz test; a test with costly examples lowers ``max_examples``."""

_LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|<class '"
    r"|\b[A-Z][A-Za-z0-9_]*(?:Error|Exception)\b"
)
"""A traceback, a class repr or an exception class name (``DecodeError``, ``KeyError``)."""


def leaks(text: str) -> list[str]:
    """The parts of ``text`` that give away the server's code (empty when it is clean)."""
    return [match.group(0) for match in _LEAKS.finditer(text)]
