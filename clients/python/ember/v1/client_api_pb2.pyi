from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("namespace", "code_search_path", "language", "pid")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CODE_SEARCH_PATH_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    code_search_path: _containers.RepeatedScalarFieldContainer[str]
    language: str
    pid: int
    def __init__(self, namespace: _Optional[str] = ..., code_search_path: _Optional[_Iterable[str]] = ..., language: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("connected", "warning", "output")
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    connected: Connected
    warning: str
    output: TaskOutput
    def __init__(self, connected: _Optional[_Union[Connected, _Mapping]] = ..., warning: _Optional[str] = ..., output: _Optional[_Union[TaskOutput, _Mapping]] = ...) -> None: ...

class Connected(_message.Message):
    __slots__ = ("session_id", "job_id", "node_id", "namespace", "max_value_bytes", "max_args_bytes", "chunk_bytes")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ARGS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    job_id: bytes
    node_id: bytes
    namespace: str
    max_value_bytes: int
    max_args_bytes: int
    chunk_bytes: int
    def __init__(self, session_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., node_id: _Optional[bytes] = ..., namespace: _Optional[str] = ..., max_value_bytes: _Optional[int] = ..., max_args_bytes: _Optional[int] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class TaskOutput(_message.Message):
    __slots__ = ("pid", "task_name", "is_stderr", "lines")
    PID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_STDERR_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    pid: int
    task_name: str
    is_stderr: bool
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pid: _Optional[int] = ..., task_name: _Optional[str] = ..., is_stderr: _Optional[bool] = ..., lines: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskOptions(_message.Message):
    __slots__ = ("num_cpus", "num_gpus", "memory", "resources", "num_returns", "max_retries", "retry_exceptions", "name")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NUM_CPUS_FIELD_NUMBER: _ClassVar[int]
    NUM_GPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NUM_RETURNS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    num_cpus: float
    num_gpus: float
    memory: float
    resources: _containers.ScalarMap[str, float]
    num_returns: int
    max_retries: int
    retry_exceptions: bool
    name: str
    def __init__(self, num_cpus: _Optional[float] = ..., num_gpus: _Optional[float] = ..., memory: _Optional[float] = ..., resources: _Optional[_Mapping[str, float]] = ..., num_returns: _Optional[int] = ..., max_retries: _Optional[int] = ..., retry_exceptions: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class Call(_message.Message):
    __slots__ = ("function", "method", "args", "kwargs", "options", "task_id")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    function: str
    method: ActorMethod
    args: bytes
    kwargs: bytes
    options: TaskOptions
    task_id: bytes
    def __init__(self, function: _Optional[str] = ..., method: _Optional[_Union[ActorMethod, _Mapping]] = ..., args: _Optional[bytes] = ..., kwargs: _Optional[bytes] = ..., options: _Optional[_Union[TaskOptions, _Mapping]] = ..., task_id: _Optional[bytes] = ...) -> None: ...

class ActorMethod(_message.Message):
    __slots__ = ("actor_id", "method")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    method: str
    def __init__(self, actor_id: _Optional[bytes] = ..., method: _Optional[str] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("session_id", "calls")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    calls: _containers.RepeatedCompositeFieldContainer[Call]
    def __init__(self, session_id: _Optional[bytes] = ..., calls: _Optional[_Iterable[_Union[Call, _Mapping]]] = ...) -> None: ...

class Refs(_message.Message):
    __slots__ = ("object_ids",)
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("session_id", "calls", "timeout_s", "release")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    calls: _containers.RepeatedCompositeFieldContainer[Call]
    timeout_s: float
    release: bool
    def __init__(self, session_id: _Optional[bytes] = ..., calls: _Optional[_Iterable[_Union[Call, _Mapping]]] = ..., timeout_s: _Optional[float] = ..., release: _Optional[bool] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("refs",)
    REFS_FIELD_NUMBER: _ClassVar[int]
    refs: _containers.RepeatedCompositeFieldContainer[Refs]
    def __init__(self, refs: _Optional[_Iterable[_Union[Refs, _Mapping]]] = ...) -> None: ...

class ActorOptions(_message.Message):
    __slots__ = ("num_cpus", "num_gpus", "memory", "resources", "name", "namespace", "lifetime", "max_restarts", "max_task_retries", "max_concurrency", "get_if_exists")
    class ResourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NUM_CPUS_FIELD_NUMBER: _ClassVar[int]
    NUM_GPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_FIELD_NUMBER: _ClassVar[int]
    MAX_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASK_RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    GET_IF_EXISTS_FIELD_NUMBER: _ClassVar[int]
    num_cpus: float
    num_gpus: float
    memory: float
    resources: _containers.ScalarMap[str, float]
    name: str
    namespace: str
    lifetime: str
    max_restarts: int
    max_task_retries: int
    max_concurrency: int
    get_if_exists: bool
    def __init__(self, num_cpus: _Optional[float] = ..., num_gpus: _Optional[float] = ..., memory: _Optional[float] = ..., resources: _Optional[_Mapping[str, float]] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., lifetime: _Optional[str] = ..., max_restarts: _Optional[int] = ..., max_task_retries: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., get_if_exists: _Optional[bool] = ...) -> None: ...

class CreateActorRequest(_message.Message):
    __slots__ = ("session_id", "class_name", "args", "kwargs", "options")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    class_name: str
    args: bytes
    kwargs: bytes
    options: ActorOptions
    def __init__(self, session_id: _Optional[bytes] = ..., class_name: _Optional[str] = ..., args: _Optional[bytes] = ..., kwargs: _Optional[bytes] = ..., options: _Optional[_Union[ActorOptions, _Mapping]] = ...) -> None: ...

class ActorRef(_message.Message):
    __slots__ = ("actor_id", "ready_object_id", "class_name", "name", "namespace")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    READY_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    ready_object_id: bytes
    class_name: str
    name: str
    namespace: str
    def __init__(self, actor_id: _Optional[bytes] = ..., ready_object_id: _Optional[bytes] = ..., class_name: _Optional[str] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class CreateActorReply(_message.Message):
    __slots__ = ("actor", "existed")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    actor: ActorRef
    existed: bool
    def __init__(self, actor: _Optional[_Union[ActorRef, _Mapping]] = ..., existed: _Optional[bool] = ...) -> None: ...

class LookupActorRequest(_message.Message):
    __slots__ = ("session_id", "name", "namespace")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    name: str
    namespace: str
    def __init__(self, session_id: _Optional[bytes] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class LookupActorReply(_message.Message):
    __slots__ = ("actor",)
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    actor: ActorRef
    def __init__(self, actor: _Optional[_Union[ActorRef, _Mapping]] = ...) -> None: ...

class KillActorRequest(_message.Message):
    __slots__ = ("session_id", "actor_id", "no_restart")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    NO_RESTART_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    actor_id: bytes
    no_restart: bool
    def __init__(self, session_id: _Optional[bytes] = ..., actor_id: _Optional[bytes] = ..., no_restart: _Optional[bool] = ...) -> None: ...

class KillActorReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("session_id", "data")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    data: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...

class PutReply(_message.Message):
    __slots__ = ("object_id",)
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    def __init__(self, object_id: _Optional[bytes] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("session_id", "object_ids", "timeout_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    timeout_s: float
    def __init__(self, session_id: _Optional[bytes] = ..., object_ids: _Optional[_Iterable[bytes]] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class GetReply(_message.Message):
    __slots__ = ("index", "data", "last", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    last: bool
    error: Error
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "type", "message", "traceback", "function")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Error.Kind]
        CODE: _ClassVar[Error.Kind]
        SYSTEM: _ClassVar[Error.Kind]
    KIND_UNSPECIFIED: Error.Kind
    CODE: Error.Kind
    SYSTEM: Error.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    kind: Error.Kind
    type: str
    message: str
    traceback: str
    function: str
    def __init__(self, kind: _Optional[_Union[Error.Kind, str]] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., function: _Optional[str] = ...) -> None: ...

class WaitRequest(_message.Message):
    __slots__ = ("session_id", "object_ids", "num_returns", "timeout_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    NUM_RETURNS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    num_returns: int
    timeout_s: float
    def __init__(self, session_id: _Optional[bytes] = ..., object_ids: _Optional[_Iterable[bytes]] = ..., num_returns: _Optional[int] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class WaitReply(_message.Message):
    __slots__ = ("ready",)
    READY_FIELD_NUMBER: _ClassVar[int]
    ready: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ready: _Optional[_Iterable[int]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("session_id", "object_ids")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    object_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., object_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ReleaseReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodesRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    def __init__(self, session_id: _Optional[bytes] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("node_id", "alive", "address", "raylet_port", "is_head", "total", "available", "labels")
    class TotalEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class AvailableEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RAYLET_PORT_FIELD_NUMBER: _ClassVar[int]
    IS_HEAD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    alive: bool
    address: str
    raylet_port: int
    is_head: bool
    total: _containers.ScalarMap[str, float]
    available: _containers.ScalarMap[str, float]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, node_id: _Optional[bytes] = ..., alive: _Optional[bool] = ..., address: _Optional[str] = ..., raylet_port: _Optional[int] = ..., is_head: _Optional[bool] = ..., total: _Optional[_Mapping[str, float]] = ..., available: _Optional[_Mapping[str, float]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class NodesReply(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...
