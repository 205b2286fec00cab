"""What the streaming RPCs' tests share: a client in a process of its own, killed mid-stream.

The clients (:mod:`.anomaly_client`, :mod:`.prediction_client`) print one JSON line per item
(its ``id`` and the ``token`` that resumes after it); a SIGKILL gives the server no goodbye.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["client_process", "read_lines", "resumes_exactly_once"]

REPO = Path(__file__).resolve().parents[3]


def client_process(module: str, *args: str) -> subprocess.Popen[str]:
    """Run ``python -m tests.integration.service.<module> ARGS``, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", f"tests.integration.service.{module}", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_lines(process: subprocess.Popen[str], count: int) -> list[dict[str, str]]:
    """The next ``count`` lines the client prints (fails if it exits first)."""
    assert process.stdout is not None
    lines: list[dict[str, str]] = []
    while len(lines) < count:
        line = process.stdout.readline()
        assert line, f"client exited early (rc={process.poll()}) after {len(lines)} lines"
        lines.append(json.loads(line))
    return lines


def resumes_exactly_once(
    client: Callable[[str], subprocess.Popen[str]],
    start: str,
    feeding: threading.Thread,
    *,
    read_first: int,
    expected: list[str],
    what: str,
) -> None:
    """A client killed mid-stream and another resuming with its last token get ``expected`` once.

    ``client(start)`` starts a client (``start``: ``time:<iso>`` or ``token:<token>``); the
    first reads ``read_first`` items while ``feeding`` produces the rest, and is killed; the
    second starts from the last token it printed. ``what`` names the items in failures.
    """
    with client(start) as first:  # leaving closes its output pipe
        feeding.start()  # keep producing while the first client reads, dies and the second starts
        try:
            received = read_lines(first, read_first)
        finally:
            first.kill()  # SIGKILL mid-stream: no goodbye to the server
            first.wait(10)
    feeding.join(30)
    with client(f"token:{received[-1]['token']}") as second:
        try:
            received += read_lines(second, len(expected) - len(received))
        finally:
            second.kill()
            second.wait(10)
    ids = [line["id"] for line in received]
    assert len(ids) == len(set(ids)), f"{what} was delivered twice"
    assert sorted(ids) == sorted(expected), f"{what} was missed"
