"""What the validation tests of every event kind share: a record, and the check of a rejection."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import pytest

from featurestore.ingest import RecordKind
from featurestore.ingest import RecordRejectedError
from featurestore.ingest import SourceRecord


def changed_record(
    source: str,
    line: int,
    good: Mapping[str, Any],
    changes: Mapping[str, Any],
    kind: RecordKind = "trade",
) -> SourceRecord:
    """``good`` with ``changes`` made, as a record; a field changed to ``...`` is left out."""
    fields = {**good, **changes}
    return SourceRecord(source, line, {k: v for k, v in fields.items() if v is not ...}, kind=kind)


def assert_rejected(
    validate: Callable[[SourceRecord], object], record: SourceRecord, code: str, field: str
) -> None:
    """``validate`` rejects ``record`` by the rule ``code``, blaming ``field``."""
    with pytest.raises(RecordRejectedError) as caught:
        validate(record)
    assert caught.value.code == code
    assert caught.value.field == field
    assert caught.value.reason.startswith(f"{code}: ")
