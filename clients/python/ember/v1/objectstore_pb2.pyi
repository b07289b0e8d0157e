from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateRequest(_message.Message):
    __slots__ = ("object_id", "size")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    size: int
    def __init__(self, object_id: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class CreateReply(_message.Message):
    __slots__ = ("path", "offset")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset: int
    def __init__(self, path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class SealRequest(_message.Message):
    __slots__ = ("object_id",)
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    def __init__(self, object_id: _Optional[bytes] = ...) -> None: ...

class SealReply(_message.Message):
    __slots__ = ("path", "offset")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset: int
    def __init__(self, path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class AbortRequest(_message.Message):
    __slots__ = ("object_id",)
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    def __init__(self, object_id: _Optional[bytes] = ...) -> None: ...

class AbortReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("object_ids",)
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DeleteReply(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class LocateRequest(_message.Message):
    __slots__ = ("object_ids",)
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LocateReply(_message.Message):
    __slots__ = ("entries",)
    class Entry(_message.Message):
        __slots__ = ("object_id", "found", "path", "size", "spilled", "offset")
        OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
        FOUND_FIELD_NUMBER: _ClassVar[int]
        PATH_FIELD_NUMBER: _ClassVar[int]
        SIZE_FIELD_NUMBER: _ClassVar[int]
        SPILLED_FIELD_NUMBER: _ClassVar[int]
        OFFSET_FIELD_NUMBER: _ClassVar[int]
        object_id: bytes
        found: bool
        path: str
        size: int
        spilled: bool
        offset: int
        def __init__(self, object_id: _Optional[bytes] = ..., found: _Optional[bool] = ..., path: _Optional[str] = ..., size: _Optional[int] = ..., spilled: _Optional[bool] = ..., offset: _Optional[int] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LocateReply.Entry]
    def __init__(self, entries: _Optional[_Iterable[_Union[LocateReply.Entry, _Mapping]]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("min_sealed_age_s", "min_unsealed_age_s")
    MIN_SEALED_AGE_S_FIELD_NUMBER: _ClassVar[int]
    MIN_UNSEALED_AGE_S_FIELD_NUMBER: _ClassVar[int]
    min_sealed_age_s: float
    min_unsealed_age_s: float
    def __init__(self, min_sealed_age_s: _Optional[float] = ..., min_unsealed_age_s: _Optional[float] = ...) -> None: ...

class ListReply(_message.Message):
    __slots__ = ("object_ids",)
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("object_id", "source_address", "size")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    source_address: str
    size: int
    def __init__(self, object_id: _Optional[bytes] = ..., source_address: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class PullReply(_message.Message):
    __slots__ = ("path", "offset")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset: int
    def __init__(self, path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class RestoreRequest(_message.Message):
    __slots__ = ("object_id",)
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    def __init__(self, object_id: _Optional[bytes] = ...) -> None: ...

class RestoreReply(_message.Message):
    __slots__ = ("path", "offset")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset: int
    def __init__(self, path: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("capacity", "used", "num_objects", "num_unsealed", "directory", "num_spilled", "spilled_bytes", "spilled_bytes_total", "restored_bytes_total", "num_evicted", "spill_directory", "resident_bytes", "num_readers", "num_pinned")
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    NUM_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NUM_UNSEALED_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    NUM_SPILLED_FIELD_NUMBER: _ClassVar[int]
    SPILLED_BYTES_FIELD_NUMBER: _ClassVar[int]
    SPILLED_BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RESTORED_BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    NUM_EVICTED_FIELD_NUMBER: _ClassVar[int]
    SPILL_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    NUM_READERS_FIELD_NUMBER: _ClassVar[int]
    NUM_PINNED_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    used: int
    num_objects: int
    num_unsealed: int
    directory: str
    num_spilled: int
    spilled_bytes: int
    spilled_bytes_total: int
    restored_bytes_total: int
    num_evicted: int
    spill_directory: str
    resident_bytes: int
    num_readers: int
    num_pinned: int
    def __init__(self, capacity: _Optional[int] = ..., used: _Optional[int] = ..., num_objects: _Optional[int] = ..., num_unsealed: _Optional[int] = ..., directory: _Optional[str] = ..., num_spilled: _Optional[int] = ..., spilled_bytes: _Optional[int] = ..., spilled_bytes_total: _Optional[int] = ..., restored_bytes_total: _Optional[int] = ..., num_evicted: _Optional[int] = ..., spill_directory: _Optional[str] = ..., resident_bytes: _Optional[int] = ..., num_readers: _Optional[int] = ..., num_pinned: _Optional[int] = ...) -> None: ...
