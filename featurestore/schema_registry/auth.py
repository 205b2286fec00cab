"""HTTP basic authentication of the registry, as Confluent's clients send it.

Confluent's serializers and ``SchemaRegistryClient`` send ``Authorization: Basic ...`` built from
``basic.auth.user.info`` (``user:password``). With users configured
(``FEATURESTORE_SCHEMA_REGISTRY__BASIC_AUTH_USERS``) every route but ``GET /health`` needs them:
a request without credentials, or with ones that do not match, gets 401 with
``WWW-Authenticate: Basic`` and Confluent's error body (``{"error_code": 401, "message": ...}``).
``/health`` stays open for the stack's supervisor and orchestrators' probes; it tells whether the
instance serves and which instance leads, nothing of the schemas.

A write sent to a follower is forwarded to the leader with the caller's ``Authorization`` header
(:mod:`~featurestore.schema_registry.forwarding`), and the leader checks it again: every
instance is configured with the same users.

Only a SHA-256 digest of each ``user:password`` is kept; the digest of the credentials a request
presents is compared with every one of them by :func:`hmac.compare_digest`, without stopping at
a match. No message or log line carries a password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping

from pydantic import SecretStr
from starlette.types import ASGIApp
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

__all__ = ["OPEN_PATHS", "BasicAuth"]

OPEN_PATHS = frozenset({"/health"})
"""Paths served without credentials."""
_CHALLENGE = b'Basic realm="schema-registry", charset="UTF-8"'
_CONTENT_TYPE = b"application/vnd.schemaregistry.v1+json"


class BasicAuth:
    """ASGI middleware: only requests with the credentials of a configured user pass."""

    def __init__(self, app: ASGIApp, users: Mapping[str, SecretStr]) -> None:
        """Guard ``app`` with the passwords of ``users``."""
        self._app = app
        self._digests = tuple(
            _digest(f"{user}:{password.get_secret_value()}".encode())
            for user, password in users.items()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request with a configured user's credentials to the app; answer others 401."""
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        problem = self._problem(dict(scope["headers"]).get(b"authorization"))
        if problem is None:
            await self._app(scope, receive, send)
            return
        body = json.dumps({"error_code": 401, "message": f"Unauthorized: {problem}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", _CONTENT_TYPE),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", _CHALLENGE),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _problem(self, header: bytes | None) -> str | None:
        """None when ``header`` carries a configured user's credentials, else what is wrong."""
        if header is None:
            return (
                "this registry needs HTTP basic credentials (Confluent clients: "
                "basic.auth.user.info=USER:PASSWORD)"
            )
        scheme, _, encoded = header.partition(b" ")
        try:
            if scheme.lower() != b"basic":
                raise ValueError
            credentials = base64.b64decode(encoded.strip(), validate=True)
        except (ValueError, binascii.Error):
            return "the Authorization header is not 'Basic <base64 of user:password>'"
        given = _digest(credentials)
        matched = False
        for digest in self._digests:  # every user, without stopping at a match
            matched |= hmac.compare_digest(given, digest)
        return None if matched else "the user name or password is not valid"


def _digest(credentials: bytes) -> bytes:
    return hashlib.sha256(credentials).digest()
