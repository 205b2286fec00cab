"""What the partition runners do with a failed step: drop its connections, then raise."""

from __future__ import annotations

import psycopg
import pytest

from featurestore.errors import BackendUnavailableError
from processors.partition_job import dropped_on_failure


def test_a_failed_step_is_dropped_and_a_lost_connection_translated() -> None:
    dropped: list[int] = []
    with dropped_on_failure(3, lambda: dropped.append(3)):
        pass
    assert dropped == []
    with (
        pytest.raises(BackendUnavailableError, match="partition 3's batch") as info,
        dropped_on_failure(3, lambda: dropped.append(3)),
    ):
        raise psycopg.OperationalError("connection lost")
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert dropped == [3]
    with pytest.raises(ValueError, match="bug"), dropped_on_failure(3, lambda: dropped.append(3)):
        raise ValueError("bug")
    assert dropped == [3, 3]
