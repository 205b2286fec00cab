"""The secured local stack's own credentials: the registry's basic-auth user and gRPC tokens.

A secured local stack (``FEATURESTORE_SECURITY__ENABLED``, ``featurestore run --secure``) puts the
schema registry behind HTTP basic auth and the gRPC API behind bearer tokens. Nobody has to set
them: the first process that loads secured settings for a data folder makes them (random, from
:mod:`secrets`) and writes them to ``<data_dir>/certs/credentials.json``, readable by its owner
only; every later process of that folder (the servers and services the stack starts, a command
an operator runs) reads the same file, so the registry and its clients, the gRPC server and the
dashboard agree. Settings given explicitly win over these
(``featurestore.config._settings._secured_defaults``).

The file holds one registry user and a token per scope plus one with every scope (``"*"``, the
dashboard's); an application is handed the token of the scope it needs::

    jq -r '.grpc_tokens["features:read"]' .stack/certs/credentials.json

Two processes that start at once race to make the file: each writes its own under a temporary
name and links it into place, and the one that loses reads the winner's, so both end with the
same credentials. A file others may read is refused, as ssh refuses such a key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from featurestore.errors import ConfigurationError

__all__ = [
    "ALL_SCOPES",
    "REGISTRY_USER",
    "LocalCredentials",
    "credentials_file",
    "local_credentials",
]

REGISTRY_USER = "featurestore"
"""The schema registry's user on the secured local stack."""
ALL_SCOPES = "*"
"""The key of the token that grants every scope (the stack's own clients use it)."""


@dataclass(frozen=True)
class LocalCredentials:
    """The secured local stack's registry user and gRPC tokens (never shown in a repr)."""

    registry_password: str = field(repr=False)
    grpc_tokens: Mapping[str, str] = field(repr=False)
    """A token per scope, and :data:`ALL_SCOPES` for the one that grants them all."""
    registry_user: str = REGISTRY_USER

    @property
    def registry_user_info(self) -> str:
        """``user:password``, as Confluent's ``basic.auth.user.info`` spells it."""
        return f"{self.registry_user}:{self.registry_password}"

    def token_entries(self) -> tuple[str, ...]:
        """``TOKEN SCOPE`` entries of ``FEATURESTORE_SERVICE__AUTH_TOKENS``."""
        return tuple(f"{token} {scope}" for scope, token in self.grpc_tokens.items())

    @classmethod
    def new(cls, scopes: Sequence[str]) -> LocalCredentials:
        """Fresh random credentials: a token for each of ``scopes`` and one for all of them."""
        return cls(
            registry_password=secrets.token_urlsafe(24),
            grpc_tokens={scope: secrets.token_urlsafe(32) for scope in (ALL_SCOPES, *scopes)},
        )

    def to_json(self) -> str:
        """The file's text."""
        registry = {"user": self.registry_user, "password": self.registry_password}
        return json.dumps({"schema_registry": registry, "grpc_tokens": dict(self.grpc_tokens)})


def credentials_file(data_dir: Path) -> Path:
    """Where the secured local stack of ``data_dir`` keeps its credentials."""
    return data_dir.resolve() / "certs" / "credentials.json"


def local_credentials(data_dir: Path, scopes: Sequence[str]) -> LocalCredentials:
    """The credentials of the secured local stack in ``data_dir``, made on first use.

    Args:
        data_dir: the stack's data folder.
        scopes: the gRPC scopes to hold a token for (``config.GRPC_SCOPES``).

    Raises:
        ConfigurationError: the file cannot be written or read, others may read it, or it lacks
            a token of one of ``scopes``; the message names the file, never a secret.
    """
    path = credentials_file(data_dir)
    if not path.exists():
        _create(path, LocalCredentials.new(scopes))
    credentials = _read(path)
    missing = [scope for scope in (ALL_SCOPES, *scopes) if scope not in credentials.grpc_tokens]
    if missing:
        raise ConfigurationError(
            f"{path} has no gRPC token for {', '.join(missing)}: remove the file to make new "
            "credentials (then restart the stack)"
        )
    return credentials


def _create(path: Path, credentials: LocalCredentials) -> None:
    """Write ``credentials`` to ``path`` unless another process has just done so."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(credentials.to_json())
            with contextlib.suppress(FileExistsError):  # another process won: use its file
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the secured stack's credentials to {path}: {exc.strerror}"
        ) from exc


def _read(path: Path) -> LocalCredentials:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the secured stack's credentials {path}: {exc.strerror}"
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path} may be read by others (mode {stat.S_IMODE(mode):04o}): chmod 600 it"
        )
    try:
        data = json.loads(text)
        registry, tokens = data["schema_registry"], data["grpc_tokens"]
        credentials = LocalCredentials(
            registry_password=str(registry["password"]),
            grpc_tokens={str(scope): str(token) for scope, token in tokens.items()},
            registry_user=str(registry["user"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigurationError(
            f"{path} is not the secured stack's credentials file: remove it to make new ones"
        ) from None
    if not credentials.registry_password or not all(credentials.grpc_tokens.values()):
        raise ConfigurationError(f"{path} holds an empty password or token: remove it")
    return credentials
