"""Feast's errors, and those of its SQL registry (SQLAlchemy over psycopg), as the store's.

Feast and SQLAlchemy are imported only when an error is translated: importing Feast takes
seconds, and a process that reads no registry should not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from featurestore.error_maps._text import one_line
from featurestore.error_maps.postgres import postgres_error
from featurestore.errors import BackendUnavailableError
from featurestore.errors import ConfigurationError
from featurestore.errors import FeatureStoreError
from featurestore.errors import NotFoundError

__all__ = ["registry_error", "registry_errors"]


def registry_error(exc: Exception, doing: str) -> FeatureStoreError | None:
    """The store's error for ``exc`` from Feast or its registry, or None when it is neither's."""
    if isinstance(exc, psycopg.Error):
        return postgres_error(exc, f"the Feast registry, {doing}")
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, DBAPIError):
        if isinstance(exc.orig, psycopg.Error):
            return postgres_error(exc.orig, f"the Feast registry, {doing}")
        if exc.connection_invalidated or "OperationalError" in type(exc).__name__:
            return BackendUnavailableError(
                f"PostgreSQL is unreachable (the Feast registry, {doing}): {one_line(exc.orig)}"
            )
    if isinstance(exc, SQLAlchemyError):
        return FeatureStoreError(
            f"the Feast registry (PostgreSQL) failed ({doing}): {one_line(exc)}"
        )
    from feast.errors import FeastError
    from feast.errors import FeastObjectNotFoundException

    if isinstance(exc, FeastObjectNotFoundException):
        return NotFoundError(f"the Feast registry ({doing}): {one_line(exc)}")
    if isinstance(exc, FeastError):
        return ConfigurationError(f"Feast refused ({doing}): {one_line(exc)}")
    return None


@contextmanager
def registry_errors(doing: str) -> Iterator[None]:
    """Raise Feast's and its registry's errors inside the block as the store's."""
    try:
        yield
    except FeatureStoreError:
        raise
    except Exception as exc:
        translated = registry_error(exc, doing)
        if translated is None:
            raise
        raise translated from exc
