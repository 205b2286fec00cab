"""The status file: rewritten from two threads at once (batch thread, Spark's listener)."""

from __future__ import annotations

import threading
from pathlib import Path

from processors.status import BatchStatus
from processors.status import read_status
from processors.status import write_status


def test_concurrent_writers_never_fail_and_leave_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    errors: list[BaseException] = []

    def writer(batch_id: int) -> None:
        try:
            for i in range(300):
                status = BatchStatus(batch_id, "now", i, 0, 0, 0, 0)
                write_status(path, status, {"writer": batch_id})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    data = read_status(path)
    assert data is not None and data["records"] == 299
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
