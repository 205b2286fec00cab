from __future__ import annotations

import random
from typing import Any

import pytest

from featurestore.config import load_settings
from featurestore.errors import ConfigurationError
from featurestore.stack.restart import RestartPolicy
from featurestore.stack.restart import RestartRecord

POLICY = RestartPolicy(
    initial_backoff_s=1.0, max_backoff_s=60.0, stable_after_s=30.0, crash_loop_after=5
)


def test_the_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    waits = [POLICY.backoff(n, draw=0.0) for n in range(1, 10)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_each_wait_is_drawn_from_the_upper_share_of_the_backoff() -> None:
    rng = random.Random(7)
    for n in range(1, 12):
        full = POLICY.backoff(n, draw=0.0)
        for _ in range(50):
            wait = POLICY.backoff(n, draw=rng.random())
            assert full * (1 - POLICY.jitter) <= wait <= full
    # processes that died together are spread out, not started in the same instant
    spread = {round(POLICY.backoff(3, draw=rng.random()), 3) for _ in range(20)}
    assert len(spread) > 10


def test_a_long_crash_loop_does_not_overflow_and_stays_at_the_cap() -> None:
    assert POLICY.backoff(10_000, draw=0.0) == 60.0
    assert POLICY.backoff(0, draw=0.0) == 1.0


def _die_quickly(record: RestartRecord, now: float, ran_for: float) -> RestartRecord:
    """The process, started ``ran_for`` seconds ago, is found dead at ``now``."""
    return record.running(pid=100, started_at=now - ran_for).died(POLICY, now, "exit 1", 0.0)


def test_quick_deaths_back_off_and_are_reported_as_a_crash_loop() -> None:
    record = RestartRecord()
    now = 1_000.0
    waits = []
    for n in range(1, 8):
        record = _die_quickly(record, now, ran_for=0.5)
        assert record.quick_deaths == n
        assert record.crash_loop == (n >= POLICY.crash_loop_after)
        assert record.last_exit == "exit 1"
        assert record.last_exit_at == now
        assert record.next_start_at is not None
        waits.append(record.next_start_at - now)
        now = record.next_start_at
        record = record.restarted(pid=200 + n, now=now)
    assert waits == [1, 2, 4, 8, 16, 32, 60]
    assert record.restarts == 7


def test_a_crash_loop_never_spins() -> None:
    # However fast the process dies, an hour of it is at most a few dozen starts.
    rng = random.Random(1)
    record, now, starts = RestartRecord(), 0.0, 0
    while now < 3600:
        record = record.running(pid=1, started_at=now).died(POLICY, now + 0.01, "x", rng.random())
        assert record.next_start_at is not None
        now = record.next_start_at
        record = record.restarted(pid=1, now=now)
        starts += 1
    assert starts < 3600 / (POLICY.max_backoff_s * (1 - POLICY.jitter)) + 10


def test_a_process_that_lived_past_stable_after_starts_a_new_run() -> None:
    record = RestartRecord()
    for _ in range(6):
        record = _die_quickly(record, 1_000.0, ran_for=1.0)
    assert record.crash_loop
    record = _die_quickly(record, 2_000.0, ran_for=POLICY.stable_after_s + 1)
    assert record.quick_deaths == 1
    assert not record.crash_loop
    assert record.next_start_at == 2_000.0 + POLICY.initial_backoff_s


def test_settle_ends_the_run_once_the_process_has_lived_long_enough() -> None:
    record = _die_quickly(_die_quickly(RestartRecord(), 10.0, 1.0), 20.0, 1.0)
    record = record.restarted(pid=7, now=50.0)
    assert record.settle(POLICY, 50.0 + POLICY.stable_after_s - 1).quick_deaths == 2
    settled = record.settle(POLICY, 50.0 + POLICY.stable_after_s)
    assert settled.quick_deaths == 0
    assert not settled.crash_loop
    assert settled.restarts == 1, "settling keeps the count of restarts"


def test_a_death_of_a_process_never_seen_starting_counts_as_quick() -> None:
    record = RestartRecord(quick_deaths=2).died(POLICY, 5.0, "gone", 0.0)
    assert record.quick_deaths == 3


def test_released_schedules_nothing() -> None:
    record = RestartRecord().died(POLICY, 5.0, "gone", 0.0).released()
    assert record.next_start_at is None
    assert record.pid is None
    assert record.last_exit == "gone"


def test_the_record_round_trips_through_json() -> None:
    record = _die_quickly(RestartRecord(), 10.0, 1.0).restarted(pid=42, now=11.0)
    assert RestartRecord.from_json(record.to_json()) == record
    assert RestartRecord.from_json({**record.to_json(), "added_later": 1}) == record


def test_the_policy_comes_from_the_settings() -> None:
    settings = load_settings(
        {
            "FEATURESTORE_SUPERVISOR__INITIAL_BACKOFF_S": "0.25",
            "FEATURESTORE_SUPERVISOR__MAX_BACKOFF_S": "5",
            "FEATURESTORE_SUPERVISOR__CRASH_LOOP_AFTER": "3",
        }
    )
    policy = RestartPolicy.from_settings(settings.supervisor)
    assert [policy.backoff(n, 0.0) for n in (1, 2, 6)] == [0.25, 0.5, 5.0]
    assert policy.crash_loop_after == 3
    assert policy.stable_after_s == settings.supervisor.stable_after_s


@pytest.mark.parametrize(
    "fields",
    [
        {"initial_backoff_s": 0.0},
        {"initial_backoff_s": 10.0, "max_backoff_s": 5.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"crash_loop_after": 0},
    ],
)
def test_a_policy_that_could_spin_is_refused(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "initial_backoff_s": 1.0,
        "max_backoff_s": 60.0,
        "stable_after_s": 30.0,
        "crash_loop_after": 5,
    }
    with pytest.raises(ConfigurationError):
        RestartPolicy(**{**base, **fields})
