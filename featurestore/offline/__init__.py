"""The offline store: time-partitioned PostgreSQL tables and point-in-time correct exports.

Typical use::

    definitions = load_definitions(settings)              # once per process (imports Feast)
    store = PostgresOfflineStore(settings.postgres.dsn, definitions)
    request = TrainingRequest(feature_service="market_features_v1")
    frame = store.to_pandas(entity_rows, request)          # or to_arrow / iter_batches
"""

from __future__ import annotations

from featurestore.offline.base import ExportStats, OfflineStore, TrainingRequest
from featurestore.offline.entities import EntitySource, NaiveTimestampWarning
from featurestore.offline.export import export_parquet
from featurestore.offline.labels import LabelSpec, add_forward_labels
from featurestore.offline.postgres import PostgresOfflineStore
from featurestore.offline.tables import create_offline_tables, ensure_partitions
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
