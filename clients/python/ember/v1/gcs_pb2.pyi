from ember.v1 import autoscaler_pb2 as _autoscaler_pb2
from ember.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlacementGroupInfo(_message.Message):
    __slots__ = ("placement_group_id", "name", "namespace", "strategy", "bundles", "state", "bundle_nodes", "job_id", "detached", "pending_reason", "create_time")
    class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PACK: _ClassVar[PlacementGroupInfo.Strategy]
        SPREAD: _ClassVar[PlacementGroupInfo.Strategy]
        STRICT_PACK: _ClassVar[PlacementGroupInfo.Strategy]
        STRICT_SPREAD: _ClassVar[PlacementGroupInfo.Strategy]
    PACK: PlacementGroupInfo.Strategy
    SPREAD: PlacementGroupInfo.Strategy
    STRICT_PACK: PlacementGroupInfo.Strategy
    STRICT_SPREAD: PlacementGroupInfo.Strategy
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[PlacementGroupInfo.State]
        PENDING: _ClassVar[PlacementGroupInfo.State]
        CREATED: _ClassVar[PlacementGroupInfo.State]
        REMOVED: _ClassVar[PlacementGroupInfo.State]
    STATE_UNSPECIFIED: PlacementGroupInfo.State
    PENDING: PlacementGroupInfo.State
    CREATED: PlacementGroupInfo.State
    REMOVED: PlacementGroupInfo.State
    PLACEMENT_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BUNDLES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_NODES_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    PENDING_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    placement_group_id: bytes
    name: str
    namespace: str
    strategy: PlacementGroupInfo.Strategy
    bundles: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResourceSet]
    state: PlacementGroupInfo.State
    bundle_nodes: _containers.RepeatedScalarFieldContainer[bytes]
    job_id: bytes
    detached: bool
    pending_reason: str
    create_time: float
    def __init__(self, placement_group_id: _Optional[bytes] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., strategy: _Optional[_Union[PlacementGroupInfo.Strategy, str]] = ..., bundles: _Optional[_Iterable[_Union[_common_pb2.ResourceSet, _Mapping]]] = ..., state: _Optional[_Union[PlacementGroupInfo.State, str]] = ..., bundle_nodes: _Optional[_Iterable[bytes]] = ..., job_id: _Optional[bytes] = ..., detached: _Optional[bool] = ..., pending_reason: _Optional[str] = ..., create_time: _Optional[float] = ...) -> None: ...

class CreatePlacementGroupRequest(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: PlacementGroupInfo
    def __init__(self, group: _Optional[_Union[PlacementGroupInfo, _Mapping]] = ...) -> None: ...

class CreatePlacementGroupReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemovePlacementGroupRequest(_message.Message):
    __slots__ = ("placement_group_id",)
    PLACEMENT_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    placement_group_id: bytes
    def __init__(self, placement_group_id: _Optional[bytes] = ...) -> None: ...

class RemovePlacementGroupReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPlacementGroupRequest(_message.Message):
    __slots__ = ("placement_group_id", "name", "namespace")
    PLACEMENT_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    placement_group_id: bytes
    name: str
    namespace: str
    def __init__(self, placement_group_id: _Optional[bytes] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class GetPlacementGroupReply(_message.Message):
    __slots__ = ("found", "group")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    found: bool
    group: PlacementGroupInfo
    def __init__(self, found: _Optional[bool] = ..., group: _Optional[_Union[PlacementGroupInfo, _Mapping]] = ...) -> None: ...

class ListPlacementGroupsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPlacementGroupsReply(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[PlacementGroupInfo]
    def __init__(self, groups: _Optional[_Iterable[_Union[PlacementGroupInfo, _Mapping]]] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "node_address", "raylet_port", "object_store_port", "total", "available", "alive", "labels", "session_dir", "is_head", "start_time", "end_time", "death_reason", "raylet_socket", "object_store_socket", "object_store_dir", "infeasible", "raylet_local_socket", "object_transfer_port", "metrics_port", "object_store_metrics_port")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RAYLET_PORT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_PORT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SESSION_DIR_FIELD_NUMBER: _ClassVar[int]
    IS_HEAD_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DEATH_REASON_FIELD_NUMBER: _ClassVar[int]
    RAYLET_SOCKET_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_SOCKET_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_DIR_FIELD_NUMBER: _ClassVar[int]
    INFEASIBLE_FIELD_NUMBER: _ClassVar[int]
    RAYLET_LOCAL_SOCKET_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TRANSFER_PORT_FIELD_NUMBER: _ClassVar[int]
    METRICS_PORT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STORE_METRICS_PORT_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    node_address: str
    raylet_port: int
    object_store_port: int
    total: _common_pb2.ResourceSet
    available: _common_pb2.ResourceSet
    alive: bool
    labels: _containers.ScalarMap[str, str]
    session_dir: str
    is_head: bool
    start_time: float
    end_time: float
    death_reason: str
    raylet_socket: str
    object_store_socket: str
    object_store_dir: str
    infeasible: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResourceSet]
    raylet_local_socket: str
    object_transfer_port: int
    metrics_port: int
    object_store_metrics_port: int
    def __init__(self, node_id: _Optional[bytes] = ..., node_address: _Optional[str] = ..., raylet_port: _Optional[int] = ..., object_store_port: _Optional[int] = ..., total: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., available: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., alive: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., session_dir: _Optional[str] = ..., is_head: _Optional[bool] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., death_reason: _Optional[str] = ..., raylet_socket: _Optional[str] = ..., object_store_socket: _Optional[str] = ..., object_store_dir: _Optional[str] = ..., infeasible: _Optional[_Iterable[_Union[_common_pb2.ResourceSet, _Mapping]]] = ..., raylet_local_socket: _Optional[str] = ..., object_transfer_port: _Optional[int] = ..., metrics_port: _Optional[int] = ..., object_store_metrics_port: _Optional[int] = ...) -> None: ...

class RegisterNodeRequest(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class RegisterNodeReply(_message.Message):
    __slots__ = ("health_timeout_s",)
    HEALTH_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    health_timeout_s: float
    def __init__(self, health_timeout_s: _Optional[float] = ...) -> None: ...

class UnregisterNodeRequest(_message.Message):
    __slots__ = ("node_id", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    reason: str
    def __init__(self, node_id: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class UnregisterNodeReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportResourcesRequest(_message.Message):
    __slots__ = ("node_id", "available", "infeasible", "total", "bundles", "demand")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    INFEASIBLE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    BUNDLES_FIELD_NUMBER: _ClassVar[int]
    DEMAND_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    available: _common_pb2.ResourceSet
    infeasible: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResourceSet]
    total: _common_pb2.ResourceSet
    bundles: _containers.RepeatedCompositeFieldContainer[HeldBundle]
    demand: _containers.RepeatedCompositeFieldContainer[_autoscaler_pb2.ResourceDemand]
    def __init__(self, node_id: _Optional[bytes] = ..., available: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., infeasible: _Optional[_Iterable[_Union[_common_pb2.ResourceSet, _Mapping]]] = ..., total: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., bundles: _Optional[_Iterable[_Union[HeldBundle, _Mapping]]] = ..., demand: _Optional[_Iterable[_Union[_autoscaler_pb2.ResourceDemand, _Mapping]]] = ...) -> None: ...

class HeldBundle(_message.Message):
    __slots__ = ("placement_group_id", "index", "committed")
    PLACEMENT_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    placement_group_id: bytes
    index: int
    committed: bool
    def __init__(self, placement_group_id: _Optional[bytes] = ..., index: _Optional[int] = ..., committed: _Optional[bool] = ...) -> None: ...

class ReportResourcesReply(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class GetAllNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAllNodesReply(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class JobInfo(_message.Message):
    __slots__ = ("job_id", "driver_address", "driver_pid", "is_dead", "start_time", "end_time", "namespace", "entrypoint", "request_id", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DRIVER_PID_FIELD_NUMBER: _ClassVar[int]
    IS_DEAD_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    driver_address: str
    driver_pid: int
    is_dead: bool
    start_time: float
    end_time: float
    namespace: str
    entrypoint: str
    request_id: bytes
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[bytes] = ..., driver_address: _Optional[str] = ..., driver_pid: _Optional[int] = ..., is_dead: _Optional[bool] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., namespace: _Optional[str] = ..., entrypoint: _Optional[str] = ..., request_id: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AddJobRequest(_message.Message):
    __slots__ = ("driver_pid", "driver_address", "namespace", "entrypoint", "request_id", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DRIVER_PID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    driver_pid: int
    driver_address: str
    namespace: str
    entrypoint: str
    request_id: bytes
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, driver_pid: _Optional[int] = ..., driver_address: _Optional[str] = ..., namespace: _Optional[str] = ..., entrypoint: _Optional[str] = ..., request_id: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AddJobReply(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: JobInfo
    def __init__(self, job: _Optional[_Union[JobInfo, _Mapping]] = ...) -> None: ...

class FinishJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    def __init__(self, job_id: _Optional[bytes] = ...) -> None: ...

class FinishJobReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAllJobsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAllJobsReply(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobInfo]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobInfo, _Mapping]]] = ...) -> None: ...

class KvPutRequest(_message.Message):
    __slots__ = ("namespace", "key", "value", "overwrite")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: bytes
    value: bytes
    overwrite: bool
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class KvPutReply(_message.Message):
    __slots__ = ("added",)
    ADDED_FIELD_NUMBER: _ClassVar[int]
    added: bool
    def __init__(self, added: _Optional[bool] = ...) -> None: ...

class KvGetRequest(_message.Message):
    __slots__ = ("namespace", "key")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: bytes
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[bytes] = ...) -> None: ...

class KvGetReply(_message.Message):
    __slots__ = ("found", "value")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class KvDeleteRequest(_message.Message):
    __slots__ = ("namespace", "key")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: bytes
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[bytes] = ...) -> None: ...

class KvDeleteReply(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class KvKeysRequest(_message.Message):
    __slots__ = ("namespace", "prefix")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    prefix: bytes
    def __init__(self, namespace: _Optional[str] = ..., prefix: _Optional[bytes] = ...) -> None: ...

class KvKeysReply(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetClusterInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetClusterInfoReply(_message.Message):
    __slots__ = ("session_name", "storage", "start_time", "leader_address", "is_leader", "replicas")
    SESSION_NAME_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    LEADER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IS_LEADER_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    session_name: str
    storage: str
    start_time: float
    leader_address: str
    is_leader: bool
    replicas: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_name: _Optional[str] = ..., storage: _Optional[str] = ..., start_time: _Optional[float] = ..., leader_address: _Optional[str] = ..., is_leader: _Optional[bool] = ..., replicas: _Optional[_Iterable[str]] = ...) -> None: ...

class ActorInfo(_message.Message):
    __slots__ = ("actor_id", "job_id", "class_name", "name", "namespace", "state", "death_cause", "death_message", "node_id", "pid", "num_restarts", "max_restarts", "detached", "handle", "start_time", "end_time", "owner_node_id", "import_name", "ready_object_id")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ActorInfo.State]
        PENDING_CREATION: _ClassVar[ActorInfo.State]
        ALIVE: _ClassVar[ActorInfo.State]
        RESTARTING: _ClassVar[ActorInfo.State]
        DEAD: _ClassVar[ActorInfo.State]
    STATE_UNSPECIFIED: ActorInfo.State
    PENDING_CREATION: ActorInfo.State
    ALIVE: ActorInfo.State
    RESTARTING: ActorInfo.State
    DEAD: ActorInfo.State
    class DeathCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CAUSE_UNSPECIFIED: _ClassVar[ActorInfo.DeathCause]
        KILLED: _ClassVar[ActorInfo.DeathCause]
        WORKER_DIED: _ClassVar[ActorInfo.DeathCause]
        NODE_DIED: _ClassVar[ActorInfo.DeathCause]
        CREATION_FAILED: _ClassVar[ActorInfo.DeathCause]
        OWNER_DIED: _ClassVar[ActorInfo.DeathCause]
        OUT_OF_SCOPE: _ClassVar[ActorInfo.DeathCause]
        EXITED: _ClassVar[ActorInfo.DeathCause]
    CAUSE_UNSPECIFIED: ActorInfo.DeathCause
    KILLED: ActorInfo.DeathCause
    WORKER_DIED: ActorInfo.DeathCause
    NODE_DIED: ActorInfo.DeathCause
    CREATION_FAILED: ActorInfo.DeathCause
    OWNER_DIED: ActorInfo.DeathCause
    OUT_OF_SCOPE: ActorInfo.DeathCause
    EXITED: ActorInfo.DeathCause
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DEATH_CAUSE_FIELD_NUMBER: _ClassVar[int]
    DEATH_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    NUM_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    DETACHED_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OWNER_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    IMPORT_NAME_FIELD_NUMBER: _ClassVar[int]
    READY_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    job_id: bytes
    class_name: str
    name: str
    namespace: str
    state: ActorInfo.State
    death_cause: ActorInfo.DeathCause
    death_message: str
    node_id: bytes
    pid: int
    num_restarts: int
    max_restarts: int
    detached: bool
    handle: bytes
    start_time: float
    end_time: float
    owner_node_id: bytes
    import_name: str
    ready_object_id: bytes
    def __init__(self, actor_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., class_name: _Optional[str] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., state: _Optional[_Union[ActorInfo.State, str]] = ..., death_cause: _Optional[_Union[ActorInfo.DeathCause, str]] = ..., death_message: _Optional[str] = ..., node_id: _Optional[bytes] = ..., pid: _Optional[int] = ..., num_restarts: _Optional[int] = ..., max_restarts: _Optional[int] = ..., detached: _Optional[bool] = ..., handle: _Optional[bytes] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., owner_node_id: _Optional[bytes] = ..., import_name: _Optional[str] = ..., ready_object_id: _Optional[bytes] = ...) -> None: ...

class RegisterActorRequest(_message.Message):
    __slots__ = ("actor",)
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    actor: ActorInfo
    def __init__(self, actor: _Optional[_Union[ActorInfo, _Mapping]] = ...) -> None: ...

class RegisterActorReply(_message.Message):
    __slots__ = ("registered", "existing")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    registered: bool
    existing: ActorInfo
    def __init__(self, registered: _Optional[bool] = ..., existing: _Optional[_Union[ActorInfo, _Mapping]] = ...) -> None: ...

class UpdateActorRequest(_message.Message):
    __slots__ = ("actor_id", "state", "death_cause", "death_message", "node_id", "pid", "num_restarts")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DEATH_CAUSE_FIELD_NUMBER: _ClassVar[int]
    DEATH_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    NUM_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    state: ActorInfo.State
    death_cause: ActorInfo.DeathCause
    death_message: str
    node_id: bytes
    pid: int
    num_restarts: int
    def __init__(self, actor_id: _Optional[bytes] = ..., state: _Optional[_Union[ActorInfo.State, str]] = ..., death_cause: _Optional[_Union[ActorInfo.DeathCause, str]] = ..., death_message: _Optional[str] = ..., node_id: _Optional[bytes] = ..., pid: _Optional[int] = ..., num_restarts: _Optional[int] = ...) -> None: ...

class UpdateActorReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetActorRequest(_message.Message):
    __slots__ = ("actor_id", "name", "namespace")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    actor_id: bytes
    name: str
    namespace: str
    def __init__(self, actor_id: _Optional[bytes] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class GetActorReply(_message.Message):
    __slots__ = ("found", "actor")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    found: bool
    actor: ActorInfo
    def __init__(self, found: _Optional[bool] = ..., actor: _Optional[_Union[ActorInfo, _Mapping]] = ...) -> None: ...

class ListActorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchActorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListActorsReply(_message.Message):
    __slots__ = ("actors",)
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    actors: _containers.RepeatedCompositeFieldContainer[ActorInfo]
    def __init__(self, actors: _Optional[_Iterable[_Union[ActorInfo, _Mapping]]] = ...) -> None: ...
