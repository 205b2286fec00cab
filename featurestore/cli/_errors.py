"""One-line messages for the errors a command meets that are not the store's own."""

from __future__ import annotations

__all__ = ["os_error_line"]


def os_error_line(exc: OSError) -> str:
    """``exc`` as "PATH: REASON", naming both paths of a rename or a copy.

    ``str(OSError)`` reads ``[Errno 2] No such file or directory: '/x/y'``; this keeps the path
    and the system's reason, without the number.
    """
    reason = exc.strerror or type(exc).__name__
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    return f"{paths}: {reason}"
