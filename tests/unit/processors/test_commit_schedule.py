"""The interval runner's commit schedule and the journal's array literal: pure functions."""

from __future__ import annotations

import pytest

from processors.interval_runner import commit_due
from processors.state_table import text_array


def test_a_partition_commits_at_its_phase_of_each_interval() -> None:
    # Interval 1 s, phase 0.25: boundaries at ..., 0.25, 1.25, 2.25, ...
    assert not commit_due(0.30, 1.24, 1.0, 0.25)
    assert commit_due(0.30, 1.25, 1.0, 0.25)
    assert commit_due(1.20, 1.26, 1.0, 0.25)  # a step just before a boundary: due at it
    assert not commit_due(1.26, 2.2, 1.0, 0.25)
    assert commit_due(1.26, 2.25, 1.0, 0.25)


@pytest.mark.parametrize("since", [0.0, 0.1, 0.49, 0.5, 0.77, 3.3, 1e6 + 0.4])
@pytest.mark.parametrize("phase", [0.0, 0.236, 0.618, 0.854])
def test_no_step_waits_more_than_an_interval(since: float, phase: float) -> None:
    assert commit_due(since, since + 1.0, 1.0, phase)
    # ... and partitions of different phases commit at different times.
    due_at = [t / 1000 for t in range(int(since * 1000), int((since + 1) * 1000) + 1)]
    first = next(t for t in due_at if commit_due(since, t, 1.0, phase))
    assert abs((first - phase) % 1.0) < 1e-3 or abs((first - phase) % 1.0 - 1.0) < 1e-3


def test_text_array_quotes_every_element() -> None:
    assert text_array([]) == "{}"
    assert text_array(["a", "", "NULL"]) == '{"a","","NULL"}'
    assert text_array(['q"', "b\\"]) == '{"q\\"","b\\\\"}'
