"""Text event files read line by line, where any line, or the rest of the file, may be damaged.

A file named ``.csv`` may hold anything: binary data, text in another encoding, a gzip stream cut
short. What cannot be read as a line of text is not an exception that ends the run but a reason
that travels with the line to the dead-letter topic, so that nothing read is lost:

- a line that is not text in the file's encoding, or that holds a NUL byte (binary data; no text
  column of the stores can keep one), is ``unparsable`` with the offset of the first bad byte;
- when the file itself fails part way (a truncated or corrupt gzip stream, an I/O error), one last
  line without bytes carries ``unreadable`` and what failed; the lines before it stand.

The header of a CSV file is read the same way; a file whose header is not text is refused as a
whole, naming the file (:class:`~featurestore.ingest.sources.tabular.CsvFile`).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

__all__ = ["READ_ERRORS", "Line", "read_lines"]

READ_ERRORS = (OSError, EOFError, zlib.error)
"""What reading a (possibly gzipped) file can raise part way: corrupt or truncated data, I/O."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a text file, without its line ending, decoded or with the reason it is not."""

    number: int
    """1-based line number."""
    raw: bytes
    """The line's bytes as read (empty for the ``unreadable`` rest of a file)."""
    text: str | None
    """The decoded line; ``None`` when :attr:`problem` says why there is none."""
    problem: str | None = None
    """``unparsable: ...`` or ``unreadable: ...`` (``<code>: <detail>``, a dead-letter reason)."""


def _open_binary(path: Path) -> BufferedIOBase:
    """Open ``path`` for reading bytes, through gzip when its name ends in ``.gz`` (any case)."""
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


def read_lines(path: Path, encoding: str) -> Iterator[Line]:
    """Yield every line of ``path`` (empty ones too), decoded with ``encoding``.

    Raises:
        OSError: only when the file cannot be opened at all; nothing it holds raises.
    """
    number = 0
    with _open_binary(path) as handle:
        try:
            for number, line in enumerate(handle, start=1):
                raw = line.rstrip(b"\r\n")
                yield Line(number, raw, *_decode(raw, encoding))
        except READ_ERRORS as exc:
            why = f"unreadable: {path.name} fails after line {number}: {exc or 'no more data'}"
            yield Line(number + 1, b"", None, why)


def _decode(raw: bytes, encoding: str) -> tuple[str | None, str | None]:
    nul = raw.find(b"\x00")
    if nul >= 0:
        return None, f"unparsable: a NUL byte at offset {nul} (binary data, not text)"
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        byte = raw[exc.start]
        return None, f"unparsable: not {name} text (byte {byte:#04x} at offset {exc.start})"
