"""Settings of the gRPC service that the shared settings object does not hold (yet).

Read from ``FEATURESTORE_SERVICE__*`` variables, for example ``FEATURESTORE_SERVICE__AUTH_TOKENS``
(comma-separated) or ``FEATURESTORE_SERVICE__TLS_CERT_FILE``. Addresses (``settings.grpc``,
``settings.redis``) stay in :class:`featurestore.config.Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

__all__ = ["ServiceSettings"]

_PREFIX = "FEATURESTORE_SERVICE__"


class ServiceSettings(BaseModel):
    """How the gRPC server authenticates, encrypts, observes itself and shuts down."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_tokens: tuple[SecretStr, ...] = ()
    """Bearer tokens accepted in the ``authorization`` header; no authentication when empty."""
    tls_cert_file: Path | None = None
    """PEM certificate chain of the server; TLS is on when this and the key are set."""
    tls_key_file: Path | None = None
    """PEM private key of the server."""
    telemetry: Literal["none", "console"] = "none"
    """Where OpenTelemetry traces and metrics go."""
    shutdown_grace_s: float = 10.0
    """How long a stopping server lets in-flight calls finish."""
    backend_timeout_s: float = 1.0
    """Socket timeout towards Redis; a call never waits longer than its own deadline either."""
    registry_path: Path = Path("registry")
    """The Feast repo whose registry defines views and feature services."""
    max_entities: int = 10_000
    """The most entity rows one GetOnlineFeatures call may ask for."""

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self

    @property
    def tls(self) -> bool:
        """Whether the server listens with TLS."""
        return self.tls_cert_file is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Build from ``FEATURESTORE_SERVICE__*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        values = {k[len(_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(_PREFIX)}
        return cls.model_validate(values)
