"""Compatibility levels and the check a new schema must pass against registered ones.

The reader/writer judgement is Apache Avro's own ``avro.compatibility`` checker (schema
resolution: promotions, defaults, enums, unions, aliases, fixed sizes, names). It agrees with all
138 vectors of ``testdata/avro_compat_cases.json``; its one gap found so far, aliases written
relative to a namespace, is closed in :mod:`featurestore.schema_registry.avro_schema` before a
schema reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from avro.compatibility import ReaderWriterCompatibilityChecker
from avro.compatibility import SchemaCompatibilityType

from featurestore.schema_registry.avro_schema import ParsedSchema
from featurestore.schema_registry.errors import InvalidCompatibilityLevelError

__all__ = ["DEFAULT_LEVEL", "CompatibilityLevel", "check_compatibility", "reader_can_read"]


class CompatibilityLevel(StrEnum):
    """Confluent's compatibility levels.

    BACKWARD: the new schema reads data written with the old. FORWARD: the old schema reads data
    written with the new. FULL: both. ``_TRANSITIVE``: against every live version, otherwise
    against the latest only.
    """

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @classmethod
    def parse(cls, value: object) -> CompatibilityLevel:
        """The level named by ``value`` (any case).

        Raises:
            InvalidCompatibilityLevelError: ``value`` names no level.
        """
        if isinstance(value, str):
            try:
                return cls(value.upper())
            except ValueError:
                pass
        raise InvalidCompatibilityLevelError(value)

    @property
    def transitive(self) -> bool:
        """Whether every live version is checked, not only the latest."""
        return self.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        """Whether the new schema must read data written with the old ones."""
        return self.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """Whether the old schemas must read data written with the new one."""
        return self.startswith(("FORWARD", "FULL"))


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD
"""The global level until one is configured, as in Confluent's registry."""


def reader_can_read(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader``; empty when it can."""
    # A fresh checker each time: it memoizes by object identity.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader.avro, writer.avro)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({k.value for k in result.incompatibilities})) or "incompatible"
    details = "; ".join(sorted(result.messages))
    where = ", ".join(sorted(result.locations))
    return [f"{kinds} at {where}: {details}"]


def check_compatibility(
    new: ParsedSchema,
    registered: Sequence[ParsedSchema],
    level: CompatibilityLevel,
) -> list[str]:
    """Why ``new`` breaks ``level`` against ``registered``; empty when it is compatible.

    Args:
        new: The candidate schema.
        registered: The subject's live versions, oldest first. Non-transitive levels look at
            the last one only.
        level: The subject's effective compatibility level.
    """
    if level is CompatibilityLevel.NONE or not registered:
        return []
    targets = registered if level.transitive else registered[-1:]
    messages: list[str] = []
    for old in reversed(targets):
        if level.backward:
            messages += [f"reader new, writer old: {m}" for m in reader_can_read(new, old)]
        if level.forward:
            messages += [f"reader old, writer new: {m}" for m in reader_can_read(old, new)]
    return messages
