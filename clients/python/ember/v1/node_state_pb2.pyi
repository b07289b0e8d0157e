from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NORMAL_TASK: _ClassVar[TaskType]
    ACTOR_CREATION_TASK: _ClassVar[TaskType]
    ACTOR_TASK: _ClassVar[TaskType]
NORMAL_TASK: TaskType
ACTOR_CREATION_TASK: TaskType
ACTOR_TASK: TaskType

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "attempt_number", "kind", "time", "start_time", "name", "job_id", "actor_id", "parent_task_id", "type", "func_or_class_name", "pending_args", "worker_id", "worker_pid", "error_type", "error_message")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SUBMITTED: _ClassVar[TaskEvent.Kind]
        DISPATCHED: _ClassVar[TaskEvent.Kind]
        RAN: _ClassVar[TaskEvent.Kind]
        FAILED: _ClassVar[TaskEvent.Kind]
        RUNNING: _ClassVar[TaskEvent.Kind]
    SUBMITTED: TaskEvent.Kind
    DISPATCHED: TaskEvent.Kind
    RAN: TaskEvent.Kind
    FAILED: TaskEvent.Kind
    RUNNING: TaskEvent.Kind
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FUNC_OR_CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    PENDING_ARGS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_PID_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    task_id: bytes
    attempt_number: int
    kind: TaskEvent.Kind
    time: float
    start_time: float
    name: str
    job_id: bytes
    actor_id: bytes
    parent_task_id: bytes
    type: TaskType
    func_or_class_name: str
    pending_args: bool
    worker_id: bytes
    worker_pid: int
    error_type: str
    error_message: str
    def __init__(self, task_id: _Optional[bytes] = ..., attempt_number: _Optional[int] = ..., kind: _Optional[_Union[TaskEvent.Kind, str]] = ..., time: _Optional[float] = ..., start_time: _Optional[float] = ..., name: _Optional[str] = ..., job_id: _Optional[bytes] = ..., actor_id: _Optional[bytes] = ..., parent_task_id: _Optional[bytes] = ..., type: _Optional[_Union[TaskType, str]] = ..., func_or_class_name: _Optional[str] = ..., pending_args: _Optional[bool] = ..., worker_id: _Optional[bytes] = ..., worker_pid: _Optional[int] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class GetTaskEventsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTaskEventsReply(_message.Message):
    __slots__ = ("node_id", "events", "dropped")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    events: _containers.RepeatedCompositeFieldContainer[TaskEvent]
    dropped: int
    def __init__(self, node_id: _Optional[bytes] = ..., events: _Optional[_Iterable[_Union[TaskEvent, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("worker_id", "pid", "alive", "actor_id", "start_time", "end_time", "exit_detail", "log_file")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_DETAIL_FIELD_NUMBER: _ClassVar[int]
    LOG_FILE_FIELD_NUMBER: _ClassVar[int]
    worker_id: bytes
    pid: int
    alive: bool
    actor_id: bytes
    start_time: float
    end_time: float
    exit_detail: str
    log_file: str
    def __init__(self, worker_id: _Optional[bytes] = ..., pid: _Optional[int] = ..., alive: _Optional[bool] = ..., actor_id: _Optional[bytes] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., exit_detail: _Optional[str] = ..., log_file: _Optional[str] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkersReply(_message.Message):
    __slots__ = ("node_id", "workers")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, node_id: _Optional[bytes] = ..., workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ...) -> None: ...

class LogFile(_message.Message):
    __slots__ = ("name", "size", "mtime", "pid", "worker_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    mtime: float
    pid: int
    worker_id: bytes
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., mtime: _Optional[float] = ..., pid: _Optional[int] = ..., worker_id: _Optional[bytes] = ...) -> None: ...

class ListLogsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLogsReply(_message.Message):
    __slots__ = ("node_id", "files")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    files: _containers.RepeatedCompositeFieldContainer[LogFile]
    def __init__(self, node_id: _Optional[bytes] = ..., files: _Optional[_Iterable[_Union[LogFile, _Mapping]]] = ...) -> None: ...

class StreamLogRequest(_message.Message):
    __slots__ = ("name", "tail_lines", "follow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    tail_lines: int
    follow: bool
    def __init__(self, name: _Optional[str] = ..., tail_lines: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
