"""The prediction log's writer runs as background work: every thread of it under SCHED_IDLE."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_EVERY_THREAD = """
import os, threading
from featurestore.prediction_log.writer import run_as_background_work

before = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
before.start()  # a thread already running when the policy is set
print(run_as_background_work())
after = []
later = threading.Thread(target=lambda: after.append(os.sched_getscheduler(0)))
later.start()
later.join(5)
policies = set()
for t in os.listdir("/proc/self/task"):
    try:  # join() returns before the OS thread has exited: its tid may still be listed
        policies.add(os.sched_getscheduler(int(t)))
    except ProcessLookupError:
        pass
print(sorted(policies), after)
"""

_A_THREAD_ENDS_MEANWHILE = """
import os, threading
from featurestore.prediction_log import writer

threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()  # two threads

real = os.sched_setscheduler
calls = []
def ended_first(tid, policy, param):
    calls.append(tid)
    if len(calls) == 1:
        raise ProcessLookupError(3, "No such process")  # listed, then ended
    real(tid, policy, param)
os.sched_setscheduler = ended_first
print(writer.run_as_background_work(), sorted({os.sched_getscheduler(tid) for tid in calls[1:]}))
"""


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_every_thread_before_and_after_runs_under_sched_idle() -> None:
    policy, threads = _run(_EVERY_THREAD)
    assert policy == "SCHED_IDLE"
    assert threads == f"[{os.SCHED_IDLE}] [{os.SCHED_IDLE}]"


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_a_thread_that_ends_while_the_policy_is_set_is_passed_over() -> None:
    """It is not a refusal: the others still go under SCHED_IDLE, not nice 19."""
    (line,) = _run(_A_THREAD_ENDS_MEANWHILE)
    assert line == f"SCHED_IDLE [{os.SCHED_IDLE}]"  # the threads listed after it are set
