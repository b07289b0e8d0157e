from ember.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvacuateObjectsRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    def __init__(self, node_id: _Optional[bytes] = ...) -> None: ...

class EvacuateObjectsReply(_message.Message):
    __slots__ = ("remaining", "started")
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    remaining: int
    started: int
    def __init__(self, remaining: _Optional[int] = ..., started: _Optional[int] = ...) -> None: ...

class ResourceDemand(_message.Message):
    __slots__ = ("shape", "count", "label_selector")
    class LabelSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LABEL_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    shape: _common_pb2.ResourceSet
    count: int
    label_selector: _containers.ScalarMap[str, str]
    def __init__(self, shape: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., count: _Optional[int] = ..., label_selector: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetAutoscalerStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AutoscalerInstance(_message.Message):
    __slots__ = ("instance_id", "node_type", "state", "node_id", "provider_id", "launch_time", "attempt", "idle_s")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[AutoscalerInstance.State]
        LAUNCHING: _ClassVar[AutoscalerInstance.State]
        RUNNING: _ClassVar[AutoscalerInstance.State]
        DRAINING: _ClassVar[AutoscalerInstance.State]
        TERMINATING: _ClassVar[AutoscalerInstance.State]
    STATE_UNSPECIFIED: AutoscalerInstance.State
    LAUNCHING: AutoscalerInstance.State
    RUNNING: AutoscalerInstance.State
    DRAINING: AutoscalerInstance.State
    TERMINATING: AutoscalerInstance.State
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    node_type: str
    state: AutoscalerInstance.State
    node_id: bytes
    provider_id: str
    launch_time: float
    attempt: int
    idle_s: float
    def __init__(self, instance_id: _Optional[str] = ..., node_type: _Optional[str] = ..., state: _Optional[_Union[AutoscalerInstance.State, str]] = ..., node_id: _Optional[bytes] = ..., provider_id: _Optional[str] = ..., launch_time: _Optional[float] = ..., attempt: _Optional[int] = ..., idle_s: _Optional[float] = ...) -> None: ...

class NodeTypeStatus(_message.Message):
    __slots__ = ("name", "running", "launching", "min_workers", "max_workers", "resources", "failed_launches", "last_failure", "backoff_s", "gave_up")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LAUNCHING_FIELD_NUMBER: _ClassVar[int]
    MIN_WORKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    FAILED_LAUNCHES_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_S_FIELD_NUMBER: _ClassVar[int]
    GAVE_UP_FIELD_NUMBER: _ClassVar[int]
    name: str
    running: int
    launching: int
    min_workers: int
    max_workers: int
    resources: _common_pb2.ResourceSet
    failed_launches: int
    last_failure: str
    backoff_s: float
    gave_up: bool
    def __init__(self, name: _Optional[str] = ..., running: _Optional[int] = ..., launching: _Optional[int] = ..., min_workers: _Optional[int] = ..., max_workers: _Optional[int] = ..., resources: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., failed_launches: _Optional[int] = ..., last_failure: _Optional[str] = ..., backoff_s: _Optional[float] = ..., gave_up: _Optional[bool] = ...) -> None: ...

class UnmetDemand(_message.Message):
    __slots__ = ("shape", "count", "reason", "infeasible")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INFEASIBLE_FIELD_NUMBER: _ClassVar[int]
    shape: _common_pb2.ResourceSet
    count: int
    reason: str
    infeasible: bool
    def __init__(self, shape: _Optional[_Union[_common_pb2.ResourceSet, _Mapping]] = ..., count: _Optional[int] = ..., reason: _Optional[str] = ..., infeasible: _Optional[bool] = ...) -> None: ...

class GetAutoscalerStatusReply(_message.Message):
    __slots__ = ("enabled", "provider", "max_workers", "node_types", "instances", "unmet", "recent_events", "requested_bundles")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MAX_WORKERS_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPES_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    UNMET_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BUNDLES_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    provider: str
    max_workers: int
    node_types: _containers.RepeatedCompositeFieldContainer[NodeTypeStatus]
    instances: _containers.RepeatedCompositeFieldContainer[AutoscalerInstance]
    unmet: _containers.RepeatedCompositeFieldContainer[UnmetDemand]
    recent_events: _containers.RepeatedScalarFieldContainer[str]
    requested_bundles: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResourceSet]
    def __init__(self, enabled: _Optional[bool] = ..., provider: _Optional[str] = ..., max_workers: _Optional[int] = ..., node_types: _Optional[_Iterable[_Union[NodeTypeStatus, _Mapping]]] = ..., instances: _Optional[_Iterable[_Union[AutoscalerInstance, _Mapping]]] = ..., unmet: _Optional[_Iterable[_Union[UnmetDemand, _Mapping]]] = ..., recent_events: _Optional[_Iterable[str]] = ..., requested_bundles: _Optional[_Iterable[_Union[_common_pb2.ResourceSet, _Mapping]]] = ...) -> None: ...
