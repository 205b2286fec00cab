"""The offline store: time-partitioned PostgreSQL tables and point-in-time correct exports.

Typical use::

    definitions = load_definitions(settings)              # once per process (imports Feast)
    with PostgresOfflineStore.from_settings(settings, definitions) as store:
        request = TrainingRequest(
            feature_service="market_features_v1",
            labels=LabelSpec(horizon=timedelta(minutes=5)),  # optional, computed in PostgreSQL
        )
        frame = store.to_pandas(entity_rows, request)      # or to_arrow / iter_batches

Entity rows: a DataFrame, an Arrow table or batches, or a .parquet/.csv path, with the join key
(``symbol``), a timestamp column (timezone-aware; naive ones are taken as UTC with a
:class:`NaiveTimestampWarning`, or refused with ``allow_naive_timestamps=False``) and any extra
columns, which are kept. Labels read only bars strictly after each row's time
(:mod:`featurestore.offline.labels`). Rows over an hour old are joined from the tables' column
copies while they are exact (:mod:`featurestore.offline.column_copy`), the rest in PostgreSQL.
"""

from __future__ import annotations

from featurestore.offline.base import ExportStats
from featurestore.offline.base import OfflineStore
from featurestore.offline.base import TrainingRequest
from featurestore.offline.entities import EntitySource
from featurestore.offline.entities import NaiveTimestampWarning
from featurestore.offline.export import export_parquet
from featurestore.offline.labels import LabelSpec
from featurestore.offline.labels import add_forward_labels
from featurestore.offline.postgres import PostgresOfflineStore
from featurestore.offline.tables import create_offline_tables
from featurestore.offline.tables import ensure_partitions
from featurestore.offline.write import write_feature_rows

__all__ = [
    "EntitySource",
    "ExportStats",
    "LabelSpec",
    "NaiveTimestampWarning",
    "OfflineStore",
    "PostgresOfflineStore",
    "TrainingRequest",
    "add_forward_labels",
    "create_offline_tables",
    "ensure_partitions",
    "export_parquet",
    "write_feature_rows",
]
