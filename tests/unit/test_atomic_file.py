"""The one way files that others read while they change are written."""

from __future__ import annotations

import threading
from pathlib import Path

from featurestore.atomic_file import write_atomically


def test_the_text_replaces_the_file_and_no_temporary_is_left(tmp_path: Path) -> None:
    path = tmp_path / "made" / "status.json"
    write_atomically(path, "old")
    write_atomically(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_writers_in_threads_each_leave_a_whole_text(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    texts = [str(n) * 10_000 for n in range(8)]
    seen: list[str] = []

    def write(text: str) -> None:
        for _ in range(50):
            write_atomically(path, text)
            seen.append(path.read_text())

    threads = [threading.Thread(target=write, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(seen) <= set(texts), "a reader saw a text no writer wrote whole"
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]
