"""psycopg's errors as the store's: what retrying can fix, and what a person has to fix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from featurestore.error_maps._text import one_line
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError

__all__ = ["postgres_error", "postgres_errors", "refused_login"]

_AUTH_SQLSTATES = frozenset({"28000", "28P01"})  # invalid authorization, invalid password
_AUTH_TEXTS = ("password authentication failed", "no pg_hba.conf entry")


def refused_login(exc: BaseException) -> bool:
    """Whether PostgreSQL refused the login (libpq's connection errors often lack a SQLSTATE)."""
    if getattr(exc, "sqlstate", None) in _AUTH_SQLSTATES:
        return True
    text = str(exc)
    return any(marker in text for marker in _AUTH_TEXTS)


def postgres_error(exc: psycopg.Error, doing: str) -> FeatureStoreError:
    """The store's error for ``exc``, met while ``doing`` (``"reading the state table"``)."""
    reason = one_line(exc)
    if refused_login(exc):
        return ConfigurationError(f"PostgreSQL refused the login ({doing}): {reason}")
    if isinstance(exc, psycopg.OperationalError):
        return BackendUnavailableError(f"PostgreSQL is unreachable ({doing}): {reason}")
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
        return ConfigurationError(
            f"PostgreSQL ({doing}): {reason}; run `featurestore registry apply`"
        )
    if isinstance(exc, psycopg.errors.UndefinedColumn):
        return ConfigurationError(
            f"PostgreSQL ({doing}): {reason}; the table lacks a column its feature view declares"
            " (a table is never altered): `featurestore registry plan` names the difference"
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return ConfigurationError(f"PostgreSQL refused ({doing}): {reason}")
    return FeatureStoreError(f"PostgreSQL failed ({doing}): {reason}")


@contextmanager
def postgres_errors(doing: str) -> Iterator[None]:
    """Raise psycopg's errors inside the block as the store's (see :func:`postgres_error`)."""
    try:
        yield
    except psycopg.Error as exc:
        raise postgres_error(exc, doing) from exc
