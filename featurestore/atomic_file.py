"""Replace a file so that a reader sees the old text or the new, never half of either."""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed over it.

    The temporary name holds the process and thread, so that two writers of one file (a
    ``stack up`` and the supervisor, two threads of a processor) never write into each other's
    temporary file; the last rename wins. The folder is made if missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
