from ember.v1 import common_pb2 as _common_pb2
from ember.v1 import node_state_pb2 as _node_state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListObjectsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ObjectInfo(_message.Message):
    __slots__ = ("object_id", "ready", "size", "inline", "stored_on", "local_copy", "owner_node", "holders", "pins", "lineage", "is_error")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    STORED_ON_FIELD_NUMBER: _ClassVar[int]
    LOCAL_COPY_FIELD_NUMBER: _ClassVar[int]
    OWNER_NODE_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    PINS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    object_id: bytes
    ready: bool
    size: int
    inline: bool
    stored_on: bytes
    local_copy: bool
    owner_node: bytes
    holders: _containers.RepeatedScalarFieldContainer[str]
    pins: int
    lineage: bool
    is_error: bool
    def __init__(self, object_id: _Optional[bytes] = ..., ready: _Optional[bool] = ..., size: _Optional[int] = ..., inline: _Optional[bool] = ..., stored_on: _Optional[bytes] = ..., local_copy: _Optional[bool] = ..., owner_node: _Optional[bytes] = ..., holders: _Optional[_Iterable[str]] = ..., pins: _Optional[int] = ..., lineage: _Optional[bool] = ..., is_error: _Optional[bool] = ...) -> None: ...

class ListObjectsReply(_message.Message):
    __slots__ = ("node_id", "objects")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    objects: _containers.RepeatedCompositeFieldContainer[ObjectInfo]
    def __init__(self, node_id: _Optional[bytes] = ..., objects: _Optional[_Iterable[_Union[ObjectInfo, _Mapping]]] = ...) -> None: ...

class Bundle(_message.Message):
    __slots__ = ("placement_group_id", "index", "resources")
    PLACEMENT_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    placement_group_id: bytes
    index: int
    resources: _common_pb2.ResourceSet
    def __init__(self, placement_group_id: _Optional[bytes] = ..., index: _Optional[int] = ..., resources: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ...) -> None: ...

class BundlesRequest(_message.Message):
    __slots__ = ("bundles",)
    BUNDLES_FIELD_NUMBER: _ClassVar[int]
    bundles: _containers.RepeatedCompositeFieldContainer[Bundle]
    def __init__(self, bundles: _Optional[_Iterable[_Union[Bundle, _Mapping]]] = ...) -> None: ...

class PrepareBundlesReply(_message.Message):
    __slots__ = ("ok", "reason")
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reason: str
    def __init__(self, ok: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class BundlesReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("task_id", "job_id", "function_id", "function_name", "args", "dependencies", "nested_refs", "num_returns", "resources", "max_retries", "retry_exceptions", "parent_task_id", "traceparent", "actor_id", "method_name", "actor_creation", "driver_node_id", "scheduling", "label_selector", "direct_worker_id", "generator", "placement_group_capture_child_tasks", "runtime_env", "attempt_number", "import_name", "neutral", "tracestate", "baggage", "submit_time_ns")
    class Generator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NOT_GENERATOR: _ClassVar[TaskSpec.Generator]
        DYNAMIC: _ClassVar[TaskSpec.Generator]
        STREAMING: _ClassVar[TaskSpec.Generator]
    NOT_GENERATOR: TaskSpec.Generator
    DYNAMIC: TaskSpec.Generator
    STREAMING: TaskSpec.Generator
    class LabelSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    NESTED_REFS_FIELD_NUMBER: _ClassVar[int]
    NUM_RETURNS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_CREATION_FIELD_NUMBER: _ClassVar[int]
    DRIVER_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    DIRECT_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_GROUP_CAPTURE_CHILD_TASKS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_ENV_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    IMPORT_NAME_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    BAGGAGE_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    task_id: bytes
    job_id: bytes
    function_id: bytes
    function_name: str
    args: bytes
    dependencies: _containers.RepeatedScalarFieldContainer[bytes]
    nested_refs: _containers.RepeatedScalarFieldContainer[bytes]
    num_returns: int
    resources: _common_pb2.ResourceSet
    max_retries: int
    retry_exceptions: bool
    parent_task_id: bytes
    traceparent: str
    actor_id: bytes
    method_name: str
    actor_creation: ActorCreation
    driver_node_id: bytes
    scheduling: SchedulingStrategy
    label_selector: _containers.ScalarMap[str, str]
    direct_worker_id: bytes
    generator: TaskSpec.Generator
    placement_group_capture_child_tasks: bool
    runtime_env: str
    attempt_number: int
    import_name: str
    neutral: bool
    tracestate: str
    baggage: str
    submit_time_ns: int
    def __init__(self, task_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., function_id: _Optional[bytes] = ..., function_name: _Optional[str] = ..., args: _Optional[bytes] = ..., dependencies: _Optional[_Iterable[bytes]] = ..., nested_refs: _Optional[_Iterable[bytes]] = ..., num_returns: _Optional[int] = ..., resources: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., max_retries: _Optional[int] = ..., retry_exceptions: _Optional[bool] = ..., parent_task_id: _Optional[bytes] = ..., traceparent: _Optional[str] = ..., actor_id: _Optional[bytes] = ..., method_name: _Optional[str] = ..., actor_creation: _Optional[_Union[ActorCreation, _Mapping]] = ..., driver_node_id: _Optional[bytes] = ..., scheduling: _Optional[_Union[SchedulingStrategy, _Mapping]] = ..., label_selector: _Optional[_Mapping[str, str]] = ..., direct_worker_id: _Optional[bytes] = ..., generator: _Optional[_Union[TaskSpec.Generator, str]] = ..., placement_group_capture_child_tasks: _Optional[bool] = ..., runtime_env: _Optional[str] = ..., attempt_number: _Optional[int] = ..., import_name: _Optional[str] = ..., neutral: _Optional[bool] = ..., tracestate: _Optional[str] = ..., baggage: _Optional[str] = ..., submit_time_ns: _Optional[int] = ...) -> None: ...

class SchedulingStrategy(_message.Message):
    __slots__ = ("kind", "node_id", "soft")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DEFAULT: _ClassVar[SchedulingStrategy.Kind]
        SPREAD: _ClassVar[SchedulingStrategy.Kind]
        NODE_AFFINITY: _ClassVar[SchedulingStrategy.Kind]
    DEFAULT: SchedulingStrategy.Kind
    SPREAD: SchedulingStrategy.Kind
    NODE_AFFINITY: SchedulingStrategy.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    kind: SchedulingStrategy.Kind
    node_id: bytes
    soft: bool
    def __init__(self, kind: _Optional[_Union[SchedulingStrategy.Kind, str]] = ..., node_id: _Optional[bytes] = ..., soft: _Optional[bool] = ...) -> None: ...

class ActorCreation(_message.Message):
    __slots__ = ("actor_id", "class_name", "max_restarts", "max_task_retries", "max_concurrency", "is_async", "detached", "name", "namespace", "scoped", "num_restarts")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASK_RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IS_ASYNC_FIELD_NUMBER: _ClassVar[int]
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    SCOPED_FIELD_NUMBER: _ClassVar[int]
    NUM_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    class_name: str
    max_restarts: int
    max_task_retries: int
    max_concurrency: int
    is_async: bool
    detached: bool
    name: str
    namespace: str
    scoped: bool
    num_restarts: int
    def __init__(self, actor_id: _Optional[bytes] = ..., class_name: _Optional[str] = ..., max_restarts: _Optional[int] = ..., max_task_retries: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., is_async: _Optional[bool] = ..., detached: _Optional[bool] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., scoped: _Optional[bool] = ..., num_restarts: _Optional[int] = ...) -> None: ...

class KillActor(_message.Message):
    __slots__ = ("actor_id", "no_restart", "reason", "death_cause")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    NO_RESTART_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DEATH_CAUSE_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    no_restart: bool
    reason: str
    death_cause: int
    def __init__(self, actor_id: _Optional[bytes] = ..., no_restart: _Optional[bool] = ..., reason: _Optional[str] = ..., death_cause: _Optional[int] = ...) -> None: ...

class RegisterClient(_message.Message):
    __slots__ = ("kind", "worker_id", "job_id", "pid", "node_id")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[RegisterClient.Kind]
        DRIVER: _ClassVar[RegisterClient.Kind]
        WORKER: _ClassVar[RegisterClient.Kind]
        RAYLET: _ClassVar[RegisterClient.Kind]
    KIND_UNSPECIFIED: RegisterClient.Kind
    DRIVER: RegisterClient.Kind
    WORKER: RegisterClient.Kind
    RAYLET: RegisterClient.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    kind: RegisterClient.Kind
    worker_id: bytes
    job_id: bytes
    pid: int
    node_id: bytes
    def __init__(self, kind: _Optional[_Union[RegisterClient.Kind, str]] = ..., worker_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., pid: _Optional[int] = ..., node_id: _Optional[bytes] = ...) -> None: ...

class ClientRegistered(_message.Message):
    __slots__ = ("node_id", "client_id", "object_store_dir", "object_store_socket", "gcs_address", "session_dir")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_DIR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_SOCKET_FIELD_NUMBER: _ClassVar[int]
    GCS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SESSION_DIR_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    client_id: bytes
    object_store_dir: str
    object_store_socket: str
    gcs_address: str
    session_dir: str
    def __init__(self, node_id: _Optional[bytes] = ..., client_id: _Optional[bytes] = ..., object_store_dir: _Optional[str] = ..., object_store_socket: _Optional[str] = ..., gcs_address: _Optional[str] = ..., session_dir: _Optional[str] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "returns", "application_error", "actor_exit", "error_message", "partial", "run_time_s", "start_time")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    ACTOR_EXIT_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    RUN_TIME_S_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    task_id: bytes
    returns: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectValue]
    application_error: bool
    actor_exit: bool
    error_message: str
    partial: bool
    run_time_s: float
    start_time: float
    def __init__(self, task_id: _Optional[bytes] = ..., returns: _Optional[_Iterable[_Union[_common_pb2.ObjectValue, _Mapping]]] = ..., application_error: _Optional[bool] = ..., actor_exit: _Optional[bool] = ..., error_message: _Optional[str] = ..., partial: _Optional[bool] = ..., run_time_s: _Optional[float] = ..., start_time: _Optional[float] = ...) -> None: ...

class CancelTask(_message.Message):
    __slots__ = ("task_id", "force", "recursive", "children_only")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_ONLY_FIELD_NUMBER: _ClassVar[int]
    task_id: bytes
    force: bool
    recursive: bool
    children_only: bool
    def __init__(self, task_id: _Optional[bytes] = ..., force: _Optional[bool] = ..., recursive: _Optional[bool] = ..., children_only: _Optional[bool] = ...) -> None: ...

class WorkerBlocked(_message.Message):
    __slots__ = ("blocked", "returned_task_ids", "task_id")
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    RETURNED_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    blocked: bool
    returned_task_ids: _containers.RepeatedScalarFieldContainer[bytes]
    task_id: bytes
    def __init__(self, blocked: _Optional[bool] = ..., returned_task_ids: _Optional[_Iterable[bytes]] = ..., task_id: _Optional[bytes] = ...) -> None: ...

class LogLines(_message.Message):
    __slots__ = ("job_id", "pid", "task_name", "is_stderr", "lines")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_STDERR_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    pid: int
    task_name: str
    is_stderr: bool
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[bytes] = ..., pid: _Optional[int] = ..., task_name: _Optional[str] = ..., is_stderr: _Optional[bool] = ..., lines: _Optional[_Iterable[str]] = ...) -> None: ...

class ClientBatch(_message.Message):
    __slots__ = ("register", "submit", "results", "subscribe", "add_refs", "remove_refs", "puts", "cancel", "blocked", "logs", "kill_actors", "kv_get", "fetch", "provide", "promises", "threads_blocked", "user_metrics", "task_events", "reclaimed")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    ADD_REFS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_REFS_FIELD_NUMBER: _ClassVar[int]
    PUTS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    KILL_ACTORS_FIELD_NUMBER: _ClassVar[int]
    KV_GET_FIELD_NUMBER: _ClassVar[int]
    FETCH_FIELD_NUMBER: _ClassVar[int]
    PROVIDE_FIELD_NUMBER: _ClassVar[int]
    PROMISES_FIELD_NUMBER: _ClassVar[int]
    THREADS_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    USER_METRICS_FIELD_NUMBER: _ClassVar[int]
    TASK_EVENTS_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    register: RegisterClient
    submit: _containers.RepeatedCompositeFieldContainer[TaskSpec]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    subscribe: _containers.RepeatedScalarFieldContainer[bytes]
    add_refs: _containers.RepeatedScalarFieldContainer[bytes]
    remove_refs: _containers.RepeatedScalarFieldContainer[bytes]
    puts: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectValue]
    cancel: _containers.RepeatedCompositeFieldContainer[CancelTask]
    blocked: WorkerBlocked
    logs: _containers.RepeatedCompositeFieldContainer[LogLines]
    kill_actors: _containers.RepeatedCompositeFieldContainer[KillActor]
    kv_get: _containers.RepeatedCompositeFieldContainer[KvKey]
    fetch: _containers.RepeatedScalarFieldContainer[bytes]
    provide: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectValue]
    promises: _containers.RepeatedScalarFieldContainer[bytes]
    threads_blocked: _containers.RepeatedCompositeFieldContainer[WorkerBlocked]
    user_metrics: UserMetrics
    task_events: _containers.RepeatedCompositeFieldContainer[_node_state_pb2.TaskEvent]
    reclaimed: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, register: _Optional[_Union[RegisterClient, _Mapping]] = ..., submit: _Optional[_Iterable[_Union[TaskSpec, _Mapping]]] = ..., results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ..., subscribe: _Optional[_Iterable[bytes]] = ..., add_refs: _Optional[_Iterable[bytes]] = ..., remove_refs: _Optional[_Iterable[bytes]] = ..., puts: _Optional[_Iterable[_Union[_common_pb2.ObjectValue, _Mapping]]] = ..., cancel: _Optional[_Iterable[_Union[CancelTask, _Mapping]]] = ..., blocked: _Optional[_Union[WorkerBlocked, _Mapping]] = ..., logs: _Optional[_Iterable[_Union[LogLines, _Mapping]]] = ..., kill_actors: _Optional[_Iterable[_Union[KillActor, _Mapping]]] = ..., kv_get: _Optional[_Iterable[_Union[KvKey, _Mapping]]] = ..., fetch: _Optional[_Iterable[bytes]] = ..., provide: _Optional[_Iterable[_Union[_common_pb2.ObjectValue, _Mapping]]] = ..., promises: _Optional[_Iterable[bytes]] = ..., threads_blocked: _Optional[_Iterable[_Union[WorkerBlocked, _Mapping]]] = ..., user_metrics: _Optional[_Union[UserMetrics, _Mapping]] = ..., task_events: _Optional[_Iterable[_Union[_node_state_pb2.TaskEvent, _Mapping]]] = ..., reclaimed: _Optional[_Iterable[bytes]] = ...) -> None: ...

class UserMetrics(_message.Message):
    __slots__ = ("families",)
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    families: _containers.RepeatedCompositeFieldContainer[UserMetricFamily]
    def __init__(self, families: _Optional[_Iterable[_Union[UserMetricFamily, _Mapping]]] = ...) -> None: ...

class UserMetricFamily(_message.Message):
    __slots__ = ("name", "description", "kind", "tag_keys", "boundaries", "series")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COUNTER: _ClassVar[UserMetricFamily.Kind]
        GAUGE: _ClassVar[UserMetricFamily.Kind]
        HISTOGRAM: _ClassVar[UserMetricFamily.Kind]
    COUNTER: UserMetricFamily.Kind
    GAUGE: UserMetricFamily.Kind
    HISTOGRAM: UserMetricFamily.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAG_KEYS_FIELD_NUMBER: _ClassVar[int]
    BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    kind: UserMetricFamily.Kind
    tag_keys: _containers.RepeatedScalarFieldContainer[str]
    boundaries: _containers.RepeatedScalarFieldContainer[float]
    series: _containers.RepeatedCompositeFieldContainer[UserMetricSeries]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[UserMetricFamily.Kind, str]] = ..., tag_keys: _Optional[_Iterable[str]] = ..., boundaries: _Optional[_Iterable[float]] = ..., series: _Optional[_Iterable[_Union[UserMetricSeries, _Mapping]]] = ...) -> None: ...

class UserMetricSeries(_message.Message):
    __slots__ = ("tag_values", "value", "bucket_counts", "set_time")
    TAG_VALUES_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SET_TIME_FIELD_NUMBER: _ClassVar[int]
    tag_values: _containers.RepeatedScalarFieldContainer[str]
    value: float
    bucket_counts: _containers.RepeatedScalarFieldContainer[int]
    set_time: float
    def __init__(self, tag_values: _Optional[_Iterable[str]] = ..., value: _Optional[float] = ..., bucket_counts: _Optional[_Iterable[int]] = ..., set_time: _Optional[float] = ...) -> None: ...

class KvKey(_message.Message):
    __slots__ = ("namespace", "key")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: bytes
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[bytes] = ...) -> None: ...

class KvEntry(_message.Message):
    __slots__ = ("namespace", "key", "found", "value", "error")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: bytes
    found: bool
    value: bytes
    error: str
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[bytes] = ..., found: _Optional[bool] = ..., value: _Optional[bytes] = ..., error: _Optional[str] = ...) -> None: ...

class ExecuteTask(_message.Message):
    __slots__ = ("spec", "args", "own_thread")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    OWN_THREAD_FIELD_NUMBER: _ClassVar[int]
    spec: TaskSpec
    args: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectValue]
    own_thread: bool
    def __init__(self, spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., args: _Optional[_Iterable[_Union[_common_pb2.ObjectValue, _Mapping]]] = ..., own_thread: _Optional[bool] = ...) -> None: ...

class RayletBatch(_message.Message):
    __slots__ = ("registered", "execute", "ready", "cancel", "warnings", "error", "logs", "kv", "handed_back", "total", "actors_ended", "borrowed", "returned_borrows", "backpressure", "reclaim")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    EXECUTE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    KV_FIELD_NUMBER: _ClassVar[int]
    HANDED_BACK_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACTORS_ENDED_FIELD_NUMBER: _ClassVar[int]
    BORROWED_FIELD_NUMBER: _ClassVar[int]
    RETURNED_BORROWS_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_FIELD_NUMBER: _ClassVar[int]
    RECLAIM_FIELD_NUMBER: _ClassVar[int]
    registered: ClientRegistered
    execute: _containers.RepeatedCompositeFieldContainer[ExecuteTask]
    ready: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectValue]
    cancel: _containers.RepeatedScalarFieldContainer[bytes]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    error: str
    logs: _containers.RepeatedCompositeFieldContainer[LogLines]
    kv: _containers.RepeatedCompositeFieldContainer[KvEntry]
    handed_back: _containers.RepeatedScalarFieldContainer[bytes]
    total: _common_pb2.ResourceSet
    actors_ended: _containers.RepeatedCompositeFieldContainer[ActorEnded]
    borrowed: _containers.RepeatedScalarFieldContainer[bytes]
    returned_borrows: _containers.RepeatedScalarFieldContainer[bytes]
    backpressure: Backpressure
    reclaim: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, registered: _Optional[_Union[ClientRegistered, _Mapping]] = ..., execute: _Optional[_Iterable[_Union[ExecuteTask, _Mapping]]] = ..., ready: _Optional[_Iterable[_Union[_common_pb2.ObjectValue, _Mapping]]] = ..., cancel: _Optional[_Iterable[bytes]] = ..., warnings: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., logs: _Optional[_Iterable[_Union[LogLines, _Mapping]]] = ..., kv: _Optional[_Iterable[_Union[KvEntry, _Mapping]]] = ..., handed_back: _Optional[_Iterable[bytes]] = ..., total: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., actors_ended: _Optional[_Iterable[_Union[ActorEnded, _Mapping]]] = ..., borrowed: _Optional[_Iterable[bytes]] = ..., returned_borrows: _Optional[_Iterable[bytes]] = ..., backpressure: _Optional[_Union[Backpressure, _Mapping]] = ..., reclaim: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Backpressure(_message.Message):
    __slots__ = ("hold_submissions", "queued_tasks", "max_queued_tasks", "store_small_values", "inline_bytes", "max_inline_bytes", "submit_allowance")
    HOLD_SUBMISSIONS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_TASKS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_TASKS_FIELD_NUMBER: _ClassVar[int]
    STORE_SMALL_VALUES_FIELD_NUMBER: _ClassVar[int]
    INLINE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_INLINE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    hold_submissions: bool
    queued_tasks: int
    max_queued_tasks: int
    store_small_values: bool
    inline_bytes: int
    max_inline_bytes: int
    submit_allowance: int
    def __init__(self, hold_submissions: _Optional[bool] = ..., queued_tasks: _Optional[int] = ..., max_queued_tasks: _Optional[int] = ..., store_small_values: _Optional[bool] = ..., inline_bytes: _Optional[int] = ..., max_inline_bytes: _Optional[int] = ..., submit_allowance: _Optional[int] = ...) -> None: ...

class ActorEnded(_message.Message):
    __slots__ = ("actor_id", "message")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    message: str
    def __init__(self, actor_id: _Optional[bytes] = ..., message: _Optional[str] = ...) -> None: ...

class GetNodeStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetNodeStatsReply(_message.Message):
    __slots__ = ("node_id", "total", "available", "num_workers", "num_idle_workers", "num_queued_tasks", "num_running_tasks", "num_objects", "inline_bytes", "infeasible", "num_actors")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    NUM_WORKERS_FIELD_NUMBER: _ClassVar[int]
    NUM_IDLE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    NUM_QUEUED_TASKS_FIELD_NUMBER: _ClassVar[int]
    NUM_RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    NUM_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    INLINE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INFEASIBLE_FIELD_NUMBER: _ClassVar[int]
    NUM_ACTORS_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    total: _common_pb2.ResourceSet
    available: _common_pb2.ResourceSet
    num_workers: int
    num_idle_workers: int
    num_queued_tasks: int
    num_running_tasks: int
    num_objects: int
    inline_bytes: int
    infeasible: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResourceSet]
    num_actors: int
    def __init__(self, node_id: _Optional[bytes] = ..., total: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., available: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., num_workers: _Optional[int] = ..., num_idle_workers: _Optional[int] = ..., num_queued_tasks: _Optional[int] = ..., num_running_tasks: _Optional[int] = ..., num_objects: _Optional[int] = ..., inline_bytes: _Optional[int] = ..., infeasible: _Optional[_Iterable[_Union[_common_pb2.ResourceSet, _Mapping]]] = ..., num_actors: _Optional[int] = ...) -> None: ...

class DirectHello(_message.Message):
    __slots__ = ("worker_id", "node_id", "actor_id")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: bytes
    node_id: bytes
    actor_id: bytes
    def __init__(self, worker_id: _Optional[bytes] = ..., node_id: _Optional[bytes] = ..., actor_id: _Optional[bytes] = ...) -> None: ...

class DirectCalls(_message.Message):
    __slots__ = ("calls", "cancel")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[ExecuteTask]
    cancel: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, calls: _Optional[_Iterable[_Union[ExecuteTask, _Mapping]]] = ..., cancel: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DirectReplies(_message.Message):
    __slots__ = ("hello", "results")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    hello: DirectHello
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    def __init__(self, hello: _Optional[_Union[DirectHello, _Mapping]] = ..., results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ...) -> None: ...
