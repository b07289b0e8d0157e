from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceSet(_message.Message):
    __slots__ = ("amounts",)
    class AmountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    amounts: _containers.ScalarMap[str, float]
    def __init__(self, amounts: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ObjectValue(_message.Message):
    __slots__ = ("object_id", "data", "stored_size", "is_error", "nested_ids", "node_id")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    NESTED_IDS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    data: bytes
    stored_size: int
    is_error: bool
    nested_ids: _containers.RepeatedScalarFieldContainer[bytes]
    node_id: bytes
    def __init__(self, object_id: _Optional[bytes] = ..., data: _Optional[bytes] = ..., stored_size: _Optional[int] = ..., is_error: _Optional[bool] = ..., nested_ids: _Optional[_Iterable[bytes]] = ..., node_id: _Optional[bytes] = ...) -> None: ...
