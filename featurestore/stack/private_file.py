"""Files that hold a secret (a password, a key): their owner's alone, from the first byte.

``Path.write_text`` then ``chmod`` leaves a moment where the file has the umask's mode (0644: any
local user may read it), and an existing file keeps its mode while it is rewritten. Here the file
is created 0600, an existing one is made 0600 before it is truncated, and only then written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["copy_private", "write_private"]


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, readable and writable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, 0o600)
        out.truncate()
        out.write(data.encode() if isinstance(data, str) else data)


def copy_private(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, which only its owner may read (see :func:`write_private`)."""
    with source.open("rb") as given:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(fd, 0o600)
            out.truncate()
            shutil.copyfileobj(given, out)
