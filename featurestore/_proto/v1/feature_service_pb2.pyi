from featurestore._proto.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetOnlineFeaturesRequest(_message.Message):
    __slots__ = ("features", "feature_service", "entities")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.ValueList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.ValueList, _Mapping]] = ...) -> None: ...
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    features: _types_pb2.FeatureList
    feature_service: str
    entities: _containers.MessageMap[str, _types_pb2.ValueList]
    def __init__(self, features: _Optional[_Union[_types_pb2.FeatureList, _Mapping]] = ..., feature_service: _Optional[str] = ..., entities: _Optional[_Mapping[str, _types_pb2.ValueList]] = ...) -> None: ...

class GetOnlineFeaturesResponse(_message.Message):
    __slots__ = ("feature_names", "columns")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    columns: _containers.RepeatedCompositeFieldContainer[_types_pb2.FeatureColumn]
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., columns: _Optional[_Iterable[_Union[_types_pb2.FeatureColumn, _Mapping]]] = ...) -> None: ...
