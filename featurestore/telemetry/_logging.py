"""The log lines of every long-running process, in one format an operator can parse."""

from __future__ import annotations

import logging

__all__ = ["LOG_FORMAT", "log_to_stderr"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""Time, level, logger, message: the servers', processors' and monitor's logs read alike."""

_ONE_LINE_PER_REQUEST = ("httpx2",)
"""Loggers that write a line per HTTP request at INFO (MLflow and registry lookups): WARNING."""


def log_to_stderr(level: int = logging.INFO) -> None:
    """Log records at ``level`` and above to stderr as :data:`LOG_FORMAT`.

    The root logger's first configuration wins (:func:`logging.basicConfig`), so a process calls
    this once, at its entry point.
    """
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for name in _ONE_LINE_PER_REQUEST:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
