from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PinRequest(_message.Message):
    __slots__ = ("lease_id", "object_ids")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    lease_id: bytes
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, lease_id: _Optional[bytes] = ..., object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PinReply(_message.Message):
    __slots__ = ("path", "entries")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PINNED: _ClassVar[PinReply.Status]
        LOST: _ClassVar[PinReply.Status]
        NO_ROOM: _ClassVar[PinReply.Status]
    PINNED: PinReply.Status
    LOST: PinReply.Status
    NO_ROOM: PinReply.Status
    class Entry(_message.Message):
        __slots__ = ("status", "offset", "size", "reason")
        STATUS_FIELD_NUMBER: _ClassVar[int]
        OFFSET_FIELD_NUMBER: _ClassVar[int]
        SIZE_FIELD_NUMBER: _ClassVar[int]
        REASON_FIELD_NUMBER: _ClassVar[int]
        status: PinReply.Status
        offset: int
        size: int
        reason: str
        def __init__(self, status: _Optional[_Union[PinReply.Status, str]] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    path: str
    entries: _containers.RepeatedCompositeFieldContainer[PinReply.Entry]
    def __init__(self, path: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[PinReply.Entry, _Mapping]]] = ...) -> None: ...

class UnpinRequest(_message.Message):
    __slots__ = ("lease_id", "object_ids")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    lease_id: bytes
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, lease_id: _Optional[bytes] = ..., object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class UnpinReply(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: int
    def __init__(self, released: _Optional[int] = ...) -> None: ...
