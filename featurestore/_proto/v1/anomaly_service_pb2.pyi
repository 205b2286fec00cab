import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamAnomaliesRequest(_message.Message):
    __slots__ = ("symbols", "min_score", "latest", "start_time", "resume_token")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    min_score: float
    latest: _empty_pb2.Empty
    start_time: _timestamp_pb2.Timestamp
    resume_token: str
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., min_score: _Optional[float] = ..., latest: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class StreamAnomaliesResponse(_message.Message):
    __slots__ = ("anomaly", "resume_token")
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    anomaly: Anomaly
    resume_token: str
    def __init__(self, anomaly: _Optional[_Union[Anomaly, _Mapping]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class Anomaly(_message.Message):
    __slots__ = ("anomaly_id", "symbol", "event_time", "score", "threshold", "model_name", "model_version", "features", "detected_at")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ANOMALY_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_FIELD_NUMBER: _ClassVar[int]
    anomaly_id: str
    symbol: str
    event_time: _timestamp_pb2.Timestamp
    score: float
    threshold: float
    model_name: str
    model_version: str
    features: _containers.ScalarMap[str, float]
    detected_at: _timestamp_pb2.Timestamp
    def __init__(self, anomaly_id: _Optional[str] = ..., symbol: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., features: _Optional[_Mapping[str, float]] = ..., detected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
