from __future__ import annotations

import base64

from featurestore.stack.kafka import new_cluster_id


def test_cluster_ids_are_uuids_that_never_read_as_options() -> None:
    ids = [new_cluster_id() for _ in range(5_000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
