"""A follower stopped while it waits for its backends at start ends cleanly, saying so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.ports import free_port


@pytest.mark.parametrize(
    ("command", "signum"),
    [(["predict", "--record"], signal.SIGINT), (["score", "--follow"], signal.SIGTERM)],
)
def test_a_stop_while_the_registry_is_away_ends_with_the_reason_not_aborted(
    command: list[str], signum: signal.Signals
) -> None:
    env = {**os.environ, "FEATURESTORE_POSTGRES__PORT": str(free_port())}  # nothing listens
    with subprocess.Popen(
        [sys.executable, "-m", "featurestore.cli", *command],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stderr is not None
            waiting = child.stderr.readline()  # the first failed attempt: now in the retry wait
            assert "postgres is away" in waiting, waiting
            time.sleep(0.5)
            child.send_signal(signum)
            rest = child.stderr.read()
            assert child.wait(30) == 0, rest
        finally:
            child.kill()
    assert "stopped while postgres was away" in rest
    assert "Aborted" not in rest and "Traceback" not in rest
