"""A project's definitions kept beside the stack, so that a restart need not import Feast.

Reading the definitions from Feast's registry (:func:`~featurestore.definitions.load_definitions`)
imports Feast: 17 s of CPU here (typeguard instruments Feast's classes as they are imported;
pandas, SQLAlchemy and FastAPI follow), about 50 s of wall time on a loaded 2-core machine. A
process that the supervisor starts again after a crash (the gRPC server, a processor) would pay
that on every start, while the registry holds the same definitions as before.

:func:`cached_definitions` reads them from Feast once, and keeps them as JSON in
``<data_dir>/definitions/<project>.json`` with two digests: one of the registry's rows for the
project (the serialized protobuf of every entity, view, stream view and feature service, by
name: one SQL query, no Feast) and one of the code that turns those rows into
:class:`~featurestore.definitions.model.Definitions` (this package's modules). A later call
whose digests both match returns the kept definitions; anything else (an ``apply`` since,
another version of this code, a file that cannot be read) reads Feast again. The registry's
digest is taken before Feast is read, so kept definitions are never older than the digest they
are filed under: a concurrent ``apply`` costs one more read of Feast, never a stale answer.

The JSON codec is generic over the frozen dataclasses of ``model.py`` (their type hints say how
to decode each field), and decoding gives back an equal object (unit-tested on every view of
``registry/``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import types
import typing
from collections.abc import Callable
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import NamedTuple

import psycopg

from featurestore.atomic_file import write_atomically
from featurestore.config import Settings
from featurestore.definitions.model import Definitions
from featurestore.definitions.repo_config import REGISTRY_SCHEMA

__all__ = [
    "KeptDefinitions",
    "cached_definitions",
    "decode_definitions",
    "encode_definitions",
    "kept_definitions",
    "registry_digest",
    "snapshot_file",
]

logger = logging.getLogger(__name__)

_FORMAT = 1


def encode_definitions(definitions: Definitions) -> dict[str, Any]:
    """``definitions`` as JSON-ready data."""
    encoded = _encode(definitions)
    assert isinstance(encoded, dict)
    return encoded


def decode_definitions(data: Mapping[str, Any]) -> Definitions:
    """The definitions :func:`encode_definitions` encoded.

    Raises:
        ValueError: ``data`` is not encoded definitions.
    """
    decoded = _decode(Definitions, data)
    assert isinstance(decoded, Definitions)
    return decoded


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, timedelta):
        return {"us": value // timedelta(microseconds=1)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot encode {type(value).__name__} in definitions")


def _decode(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None:
            return None
        if len(options) != 1:
            raise ValueError(f"cannot decode the union {kind}")
        return _decode(options[0], data)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(data, Mapping):
            raise ValueError(f"{kind.__name__}: expected an object")
        hints = typing.get_type_hints(kind)
        fields = {f.name for f in dataclasses.fields(kind) if f.init}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"{kind.__name__}: unknown fields {sorted(unknown)}")
        return kind(**{name: _decode(hints[name], value) for name, value in data.items()})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind[data]
    if kind is timedelta:
        return timedelta(microseconds=int(data["us"]))
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise ValueError(f"cannot decode the tuple {kind}")
        return tuple(_decode(args[0], v) for v in data)
    if origin in (Mapping, dict, typing.Mapping):
        key, value = typing.get_args(kind)
        return {_decode(key, k): _decode(value, v) for k, v in data.items()}
    if kind in (str, int, float, bool):
        if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
            raise ValueError(f"expected {kind.__name__}, got {type(data).__name__}")
        return data
    raise ValueError(f"cannot decode {kind}")


def snapshot_file(settings: Settings, project: str) -> Path:
    """Where the definitions of ``project`` are kept."""
    return settings.data_dir.resolve() / "definitions" / f"{project}.json"


_REGISTRY_ROWS = f"""
SELECT md5(string_agg(kind || ':' || name || ':' || md5(proto), ',' ORDER BY kind, name))
FROM (
    SELECT 'entity' AS kind, entity_name AS name, entity_proto AS proto
    FROM {REGISTRY_SCHEMA}.entities WHERE project_id = %(project)s
    UNION ALL
    SELECT 'view', feature_view_name, feature_view_proto
    FROM {REGISTRY_SCHEMA}.feature_views WHERE project_id = %(project)s
    UNION ALL
    SELECT 'stream', feature_view_name, feature_view_proto
    FROM {REGISTRY_SCHEMA}.stream_feature_views WHERE project_id = %(project)s
    UNION ALL
    SELECT 'service', feature_service_name, feature_service_proto
    FROM {REGISTRY_SCHEMA}.feature_services WHERE project_id = %(project)s
) AS registered
"""


def registry_digest(settings: Settings, project: str) -> str | None:
    """A digest of what Feast's registry holds for ``project``; None: nothing, or no answer."""
    try:
        with psycopg.connect(settings.postgres.dsn, connect_timeout=5) as conn:
            row = conn.execute(_REGISTRY_ROWS, {"project": project}).fetchone()
    except psycopg.Error as exc:  # Feast's own read says what is wrong, in its words
        logger.debug("no registry digest for %s: %s", project, exc)
        return None
    return None if row is None or row[0] is None else str(row[0])


def _code_digest() -> str:
    """A digest of the code that turns the registry's rows into definitions (this package)."""
    digest = hashlib.sha256(str(_FORMAT).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


class KeptDefinitions(NamedTuple):
    """A project's definitions and the registry's digest they were read at."""

    definitions: Definitions
    digest: str | None
    """:func:`registry_digest` taken before they were read (None: it had no answer)."""


def cached_definitions(
    settings: Settings,
    project: str,
    load: Callable[[Settings, str], Definitions] | None = None,
) -> Definitions:
    """The definitions of ``project``, read from Feast only when the registry changed.

    Args:
        settings: where the registry and the data folder are.
        project: the Feast project.
        load: how to read them from Feast (:func:`~featurestore.definitions.load_definitions`).

    Raises:
        Whatever ``load`` raises when they must be read from Feast.
    """
    return kept_definitions(settings, project, load).definitions


def kept_definitions(
    settings: Settings,
    project: str,
    load: Callable[[Settings, str], Definitions] | None = None,
) -> KeptDefinitions:
    """:func:`cached_definitions` with the digest they are filed under, to watch for a change."""
    if load is None:
        from featurestore.definitions.registry import load_definitions

        load = load_definitions
    digest = registry_digest(settings, project)
    if digest is None:
        return KeptDefinitions(load(settings, project), None)
    path = snapshot_file(settings, project)
    code = _code_digest()
    try:
        kept = json.loads(path.read_text())
        if kept.get("registry") == digest and kept.get("code") == code:
            return KeptDefinitions(decode_definitions(kept["definitions"]), digest)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("reading Feast again: %s cannot be used (%s)", path, exc)
    definitions = load(settings, project)
    _keep(path, {"registry": digest, "code": code, "definitions": encode_definitions(definitions)})
    return KeptDefinitions(definitions, digest)


def _keep(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically; a folder that cannot be written is skipped."""
    try:
        write_atomically(path, json.dumps(data))
    except OSError as exc:
        logger.warning("definitions not kept in %s: %s", path, exc)
