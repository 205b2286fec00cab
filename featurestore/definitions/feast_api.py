"""The Feast names this store uses: Feast's first import in a process is this module's.

Feast takes seconds of CPU to import, so code imports this module lazily, inside the function
that needs Feast (two costly submodules, ``repo_operations`` and the PostgreSQL source, are
imported where they are used, after it). Importing it also undoes a leak of Feast's: Feast keeps
the ``ImportError`` of its optional torch import in a module global
(``feast.torch_wrapper._torch_import_error``), with its traceback. A traceback holds its frames
and, through ``f_back``, the frames of every caller at that moment, with their locals: whatever
the first importer's callers held (in the tests, a fixture's Kafka producer, still connecting to
a stopped broker at exit) stayed alive until the process ended. The traceback is dropped here;
the error and its message stay, for Feast's ``get_torch``.
"""

from __future__ import annotations

from feast import Entity
from feast import FeatureService
from feast import FeatureStore
from feast import FeatureView
from feast import Field
from feast import KafkaSource
from feast import OnDemandFeatureView
from feast import RepoConfig
from feast import StreamFeatureView
from feast import ValueType
from feast import torch_wrapper
from feast import types
from feast.aggregation import Aggregation
from feast.data_format import AvroFormat
from feast.data_source import DataSource
from feast.infra.registry.sql import SqlRegistry
from feast.project import Project

__all__ = [
    "Aggregation",
    "AvroFormat",
    "DataSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "KafkaSource",
    "OnDemandFeatureView",
    "Project",
    "RepoConfig",
    "SqlRegistry",
    "StreamFeatureView",
    "ValueType",
    "types",
]


def _drop_kept_traceback() -> None:
    error = getattr(torch_wrapper, "_torch_import_error", None)
    if isinstance(error, BaseException):
        error.__traceback__ = None


_drop_kept_traceback()
