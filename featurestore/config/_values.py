"""Checks and types of single setting values (ports, URLs, lists, secrets); the sections' base."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import SecretStr

LOOPBACK = "127.0.0.1"


def _entries(text: str) -> tuple[str, ...]:
    """The entries of a comma-separated list, stripped; ``""`` is the empty list.

    Raises:
        ValueError: an entry is blank (``a,,b``, a trailing comma), naming it by its place.
    """
    if not text.strip():
        return ()
    entries = tuple(entry.strip() for entry in text.split(","))
    for number, entry in enumerate(entries, 1):
        if not entry:
            raise ValueError(f"entry {number} of the comma-separated list is empty")
    return entries


def _comma_separated(value: object) -> object:
    """A comma-separated string (as an environment variable holds it) as a tuple of names."""
    return _entries(value) if isinstance(value, str) else value


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port number (1-65535), not {value}")
    return value


def _port_or_free(value: int) -> int:
    if value != 0 and not 1 <= value <= 65535:
        raise ValueError(f"must be a port number (1-65535), or 0 for a free one, not {value}")
    return value


Port = Annotated[int, AfterValidator(_port_number)]
"""A TCP port a server listens on or a client connects to."""
PortOrFree = Annotated[int, AfterValidator(_port_or_free)]
"""A port a server of the store binds, where 0 asks the system for a free one (tests, several
servers on one host); only where the code reports or registers the port it got."""


def _host_port(entry: str, which: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) split, the port checked.

    Raises:
        ValueError: the entry is not of that form; the message names ``which``.
    """
    host, sep, port = entry.rpartition(":")
    if not sep or not host.strip() or not (port.isascii() and port.isdigit()):
        raise ValueError(f"{which} {entry!r} is not of the form host:port")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{which} {entry!r}: the port must be 1-65535")
    return host, int(port)


def _shown(text: str) -> str:
    """``text`` for a message: a URL with credentials (``user:pass@``) is not shown."""
    return "(the value, not shown: it holds credentials)" if "@" in text else repr(text)


def _url(text: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``text`` stripped, checked to be a URL of one of ``schemes`` with a host.

    Raises:
        ValueError: it is not; the message shows the value unless it holds credentials.
    """
    text = text.strip()
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not 0-65535
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme.lower() not in schemes or not parts.hostname or not port_ok:
        expected = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(
            f"{_shown(text)} is not a URL: it needs a scheme ({expected}) and a host,"
            f" such as {schemes[0]}://host:port"
        )
    return text


def _http_url(value: str | None) -> str | None:
    return None if value is None else _url(value)


def _http_urls(value: str | None) -> str | None:
    """A comma-separated list of http(s) URLs, each checked, joined again without spaces."""
    if value is None:
        return None
    entries = _entries(value)
    if not entries:
        raise ValueError("no URL is given")
    return ",".join(_url(entry) for entry in entries)


def _secret_entries(value: object) -> object:
    """Comma- or newline-separated secrets as a tuple, blank and ``#`` comment lines left out.

    An environment variable holds them comma-separated, a mounted file one a line.
    """
    if isinstance(value, str | SecretStr):
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        lines = (line.strip() for line in text.splitlines())
        kept = ",".join(line for line in lines if line and not line.startswith("#"))
        return tuple(entry.strip() for entry in kept.split(",") if entry.strip())
    return value


def _each_entry(
    parse: Callable[[str, str], object],
) -> Callable[[tuple[SecretStr, ...]], tuple[SecretStr, ...]]:
    """A validator that parses every secret entry with ``parse``, naming a bad one by number."""

    def check(value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for number, entry in enumerate(value, 1):
            parse(entry.get_secret_value(), f"entry {number}")
        return value

    return check


def _user_password(entry: str, which: str) -> tuple[str, str]:
    """``user:password`` split at its first colon; the message never shows the password."""
    user, sep, password = entry.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError(f"{which} is not of the form user:password")
    return user.strip(), password


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
