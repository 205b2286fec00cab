import datetime

from featurestore._proto.v1 import types_pb2 as _types_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportTrainingDatasetRequest(_message.Message):
    __slots__ = ("features", "feature_service", "entity_rows_arrow", "time_grid", "label_horizon", "batch_rows")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ROWS_ARROW_FIELD_NUMBER: _ClassVar[int]
    TIME_GRID_FIELD_NUMBER: _ClassVar[int]
    LABEL_HORIZON_FIELD_NUMBER: _ClassVar[int]
    BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    features: _types_pb2.FeatureList
    feature_service: str
    entity_rows_arrow: bytes
    time_grid: EntityTimeGrid
    label_horizon: _duration_pb2.Duration
    batch_rows: int
    def __init__(self, features: _Optional[_Union[_types_pb2.FeatureList, _Mapping]] = ..., feature_service: _Optional[str] = ..., entity_rows_arrow: _Optional[bytes] = ..., time_grid: _Optional[_Union[EntityTimeGrid, _Mapping]] = ..., label_horizon: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., batch_rows: _Optional[int] = ...) -> None: ...

class EntityTimeGrid(_message.Message):
    __slots__ = ("symbols", "start_time", "end_time", "step")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    step: _duration_pb2.Duration
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ExportTrainingDatasetResponse(_message.Message):
    __slots__ = ("arrow_ipc", "row_count")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    row_count: int
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., row_count: _Optional[int] = ...) -> None: ...
