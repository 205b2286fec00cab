"""The prediction log's writer runs as background work: every thread of it under SCHED_IDLE."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_CHILD = """
import os, threading
from featurestore.prediction_log.writer import run_as_background_work

before = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
before.start()  # a thread already running when the policy is set
print(run_as_background_work())
after = []
started = threading.Event()
def later():
    after.append(os.sched_getscheduler(0))
    started.set()
threading.Thread(target=later).start()
started.wait(5)
print(sorted({os.sched_getscheduler(int(t)) for t in os.listdir("/proc/self/task")}), after)
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_every_thread_before_and_after_runs_under_sched_idle() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True
    )
    policy, threads = done.stdout.splitlines()
    assert policy == "SCHED_IDLE"
    assert threads == f"[{os.SCHED_IDLE}] [{os.SCHED_IDLE}]"
