"""The columns a view's rows and offline table hold besides its features.

No feature may take their names. They are declared here, beside the definitions, so that
validating a view needs neither the processors nor the offline store, which both read them
from here: the processors give every row :data:`ROW_METADATA`, and a view's offline table adds
its event and created times and :data:`LINEAGE_COLUMNS` (:mod:`featurestore.offline.tables`).
"""

from __future__ import annotations

from featurestore.definitions.model import FeatureView
from featurestore.definitions.model import SourceTable

__all__ = ["LINEAGE_COLUMNS", "ROW_METADATA", "reserved_columns", "reserved_feature_names"]

ROW_METADATA = ("entity", "event_us", "created_ms", "first_offset", "last_offset")
"""The columns of every row the processors compute, besides its features."""

LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_topic", "text"),
    ("source_partition", "integer"),
    ("source_offset_start", "bigint"),
    ("source_offset_end", "bigint"),
)
"""Lineage columns (name, PostgreSQL type) every offline row carries: where in the event log it
came from."""


def reserved_columns(view: FeatureView) -> tuple[str, ...]:
    """The columns of the view's offline table besides its join keys and features.

    Its event and created times (the view's names and the contract's defaults, which the
    processors' rows use) and the lineage columns.
    """
    src = view.source
    return (
        src.timestamp_field,
        src.created_timestamp_column,
        SourceTable.timestamp_field,
        SourceTable.created_timestamp_column,
        *(name for name, _ in LINEAGE_COLUMNS),
    )


def reserved_feature_names(view: FeatureView) -> frozenset[str]:
    """Names no feature of ``view`` may take: its rows' metadata and its table's own columns."""
    return frozenset((*ROW_METADATA, *reserved_columns(view)))
