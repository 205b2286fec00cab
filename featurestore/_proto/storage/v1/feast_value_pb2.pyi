from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeastNull(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEAST_NULL_UNSPECIFIED: _ClassVar[FeastNull]
FEAST_NULL_UNSPECIFIED: FeastNull

class FeastValue(_message.Message):
    __slots__ = ("bytes_val", "string_val", "int32_val", "int64_val", "double_val", "float_val", "bool_val", "unix_timestamp_val", "null_val")
    BYTES_VAL_FIELD_NUMBER: _ClassVar[int]
    STRING_VAL_FIELD_NUMBER: _ClassVar[int]
    INT32_VAL_FIELD_NUMBER: _ClassVar[int]
    INT64_VAL_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VAL_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VAL_FIELD_NUMBER: _ClassVar[int]
    BOOL_VAL_FIELD_NUMBER: _ClassVar[int]
    UNIX_TIMESTAMP_VAL_FIELD_NUMBER: _ClassVar[int]
    NULL_VAL_FIELD_NUMBER: _ClassVar[int]
    bytes_val: bytes
    string_val: str
    int32_val: int
    int64_val: int
    double_val: float
    float_val: float
    bool_val: bool
    unix_timestamp_val: int
    null_val: FeastNull
    def __init__(self, bytes_val: _Optional[bytes] = ..., string_val: _Optional[str] = ..., int32_val: _Optional[int] = ..., int64_val: _Optional[int] = ..., double_val: _Optional[float] = ..., float_val: _Optional[float] = ..., bool_val: _Optional[bool] = ..., unix_timestamp_val: _Optional[int] = ..., null_val: _Optional[_Union[FeastNull, str]] = ...) -> None: ...
