from __future__ import annotations

import pytest

from featurestore.errors import ConfigurationError
from featurestore.topics import Replication


@pytest.mark.parametrize(
    ("brokers", "expected"),
    [
        (1, Replication(1, 1)),
        (2, Replication(2, 1)),
        (3, Replication(3, 2)),
        (5, Replication(3, 2)),
    ],
)
def test_by_default_three_replicas_two_in_sync_where_the_brokers_allow(
    brokers: int, expected: Replication
) -> None:
    assert Replication.for_cluster(brokers) == expected


def test_configured_replication_is_used_as_given() -> None:
    assert Replication.for_cluster(5, 5, 3) == Replication(5, 3)
    assert Replication.for_cluster(3, 3, 3) == Replication(3, 3)
    assert Replication.for_cluster(3, 1) == Replication(1, 1)


def test_replication_beyond_the_cluster_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"REPLICATION_FACTOR.*needs at least 3.*has 2"):
        Replication.for_cluster(2, 3)
    with pytest.raises(ConfigurationError, match="MIN_INSYNC_REPLICAS"):
        Replication.for_cluster(3, 2, 3)
