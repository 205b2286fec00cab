"""Secret files are their owner's alone from the first byte, new or rewritten."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from featurestore.stack.private_file import copy_private
from featurestore.stack.private_file import write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_created_owner_only(tmp_path: Path) -> None:
    # A umask that lets everyone read: the file must not be readable even for a moment.
    old = os.umask(0o000)
    try:
        write_private(tmp_path / "pw", "s3cret\n")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "pw") == 0o600
    assert (tmp_path / "pw").read_text() == "s3cret\n"


@pytest.mark.parametrize("write", ["write", "copy"])
def test_an_existing_readable_file_is_closed_before_it_is_rewritten(
    tmp_path: Path, write: str
) -> None:
    target = tmp_path / "server.key"
    target.write_text("an old, longer key that was readable by everyone")
    target.chmod(0o644)
    if write == "write":
        write_private(target, b"new key")
    else:
        source = tmp_path / "source.pem"
        source.write_bytes(b"new key")
        copy_private(source, target)
    assert _mode(target) == 0o600
    assert target.read_bytes() == b"new key"
