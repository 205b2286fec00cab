import datetime

from featurestore._proto.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "alias", "version", "entities", "inline_features")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.ValueList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.ValueList, _Mapping]] = ...) -> None: ...
    class InlineFeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.ValueList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.ValueList, _Mapping]] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    INLINE_FEATURES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    alias: str
    version: str
    entities: _containers.MessageMap[str, _types_pb2.ValueList]
    inline_features: _containers.MessageMap[str, _types_pb2.ValueList]
    def __init__(self, model_name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., entities: _Optional[_Mapping[str, _types_pb2.ValueList]] = ..., inline_features: _Optional[_Mapping[str, _types_pb2.ValueList]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "predictions")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("request_id", "score", "feature_names", "feature_values", "feature_statuses", "feature_time")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VALUES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TIME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    score: float
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    feature_values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    feature_statuses: _containers.RepeatedScalarFieldContainer[_types_pb2.FeatureStatus]
    feature_time: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., score: _Optional[float] = ..., feature_names: _Optional[_Iterable[str]] = ..., feature_values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ..., feature_statuses: _Optional[_Iterable[_Union[_types_pb2.FeatureStatus, str]]] = ..., feature_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
