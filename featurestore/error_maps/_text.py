"""One line of a library's error text, for messages."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with its whitespace (libpq's multi-line messages) folded, cut at ``limit``."""
    folded = " ".join(str(text).split())
    return folded[:limit] + ("..." if len(folded) > limit else "")
