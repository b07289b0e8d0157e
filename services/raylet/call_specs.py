"""Task specs from the client API's requests (proto/ember/v1/client_api.proto):
a call of Python code by name, or of an actor's method, with arguments in
the neutral encoding. Pure: checks and builds, nothing else; every fault is
an InvalidArgument saying what to fix."""

from __future__ import annotations

import dataclasses
import re

import msgpack
from ember.v1 import client_api_pb2, raylet_pb2

from ember_common import ids, import_names, neutral_values
from ember_common.errors import InvalidArgument

_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LIFETIMES = ("", "non_detached", "detached")
DEFAULT_TASK_RETRIES = 3  # Ray's max_retries for tasks


@dataclasses.dataclass
class BuiltCall:
    spec: raylet_pb2.TaskSpec
    refs: list[bytes]  # every ref in the arguments (the session must hold them)


def call_arguments(args: bytes, kwargs: bytes, max_bytes: int, what: str) -> tuple[bytes, list[bytes], list[bytes]]:
    """The neutral [args, kwargs] document of a call, its top-level refs
    (dependencies: their values replace them) and the refs nested deeper."""
    if len(args) + len(kwargs) > max_bytes:
        raise InvalidArgument(f"{what}: the arguments take {len(args) + len(kwargs)} bytes, more than the "
                              f"{max_bytes} a call may carry; put large values first (Put) and pass their refs")
    positional = _document(args, what, "args", list) if args else []
    keywords = _document(kwargs, what, "kwargs", dict) if kwargs else {}
    top = [a.object_id for a in [*positional, *keywords.values()] if isinstance(a, neutral_values.RefPlaceholder)]
    every = neutral_values.refs_in([positional, keywords])
    nested = list(every)
    for object_id in top:
        nested.remove(object_id)
    document = b"\x92" + (args or msgpack.packb([])) + (kwargs or msgpack.packb({}))
    return document, list(dict.fromkeys(top)), list(dict.fromkeys(nested))


def _document(data: bytes, what: str, field: str, kind: type) -> list | dict:
    try:
        value = neutral_values.decode(data)
    except neutral_values.NeutralDecodeError as e:
        raise InvalidArgument(f"{what}: `{field}` is not a neutral value: {e}") from None
    if not isinstance(value, kind):
        raise InvalidArgument(f"{what}: `{field}` must be a MessagePack {'array' if kind is list else 'map'}, "
                              f"got {type(value).__name__}")
    return value


def _resources(num_cpus: float, num_gpus: float, memory: float, extra: dict[str, float], what: str) -> dict[str, float]:
    shape = {"CPU": num_cpus, "GPU": num_gpus, "memory": memory, **extra}
    for name, amount in shape.items():
        if amount < 0 or amount != amount:
            raise InvalidArgument(f"{what}: resource {name!r} must be a non-negative number, got {amount}")
    return {k: float(v) for k, v in shape.items() if v > 0}


def task_call(call: client_api_pb2.Call, job_id: bytes, max_args_bytes: int, index: int) -> BuiltCall:
    """A task (function by name) or an actor method call."""
    target = call.WhichOneof("target")
    what = f"call {index}"
    opts = call.options
    if target is None:
        raise InvalidArgument(f"{what}: name a `function` (\"package.module:function\") or an actor `method`")
    num_returns = opts.num_returns if opts.HasField("num_returns") else 1
    if num_returns > 10_000:
        raise InvalidArgument(f"{what}: num_returns must be 0..10000, got {num_returns}")
    if opts.HasField("max_retries") and opts.max_retries < -1:
        raise InvalidArgument(f"{what}: max_retries must be >= -1, got {opts.max_retries}")
    document, deps, nested = call_arguments(call.args, call.kwargs, max_args_bytes, what)
    task_id = _task_id(call.task_id, target == "method", what)
    if target == "function":
        try:
            import_names.split(call.function)
        except InvalidArgument as e:
            raise InvalidArgument(f"{what}: {e}") from None
        spec = raylet_pb2.TaskSpec(
            task_id=task_id, job_id=job_id, import_name=call.function,
            function_name=opts.name or call.function.split(":", 1)[1], args=document, dependencies=deps,
            nested_refs=nested, num_returns=num_returns, neutral=True,
            max_retries=opts.max_retries if opts.HasField("max_retries") else DEFAULT_TASK_RETRIES,
            retry_exceptions=opts.retry_exceptions)
        spec.resources.amounts.update(_resources(opts.num_cpus if opts.HasField("num_cpus") else 1.0,
                                                 opts.num_gpus, opts.memory, dict(opts.resources), what))
    else:
        method = call.method
        if len(method.actor_id) != ids.UNIQUE_ID_SIZE:
            raise InvalidArgument(f"{what}: actor_id must be {ids.UNIQUE_ID_SIZE} bytes, got {len(method.actor_id)}")
        if not _METHOD.match(method.method) or method.method.startswith("__") and method.method != "__ray_ready__":
            raise InvalidArgument(f"{what}: {method.method!r} is not a method name")
        if opts.HasField("num_cpus") or opts.num_gpus or opts.memory or opts.resources:
            raise InvalidArgument(f"{what}: an actor method call takes no resources (the actor holds them)")
        spec = raylet_pb2.TaskSpec(
            task_id=task_id, job_id=job_id, actor_id=method.actor_id,
            method_name=method.method, function_name=opts.name or method.method, args=document,
            dependencies=deps, nested_refs=nested, num_returns=num_returns, neutral=True,
            max_retries=opts.max_retries if opts.HasField("max_retries") else 0,
            retry_exceptions=opts.retry_exceptions)
    return BuiltCall(spec, [*deps, *nested])


def _task_id(chosen: bytes, actor_call: bool, what: str) -> bytes:
    if not chosen:
        return ids.new_task_id(actor_call=actor_call)
    if len(chosen) != ids.UNIQUE_ID_SIZE:
        raise InvalidArgument(f"{what}: task_id must be {ids.UNIQUE_ID_SIZE} bytes, got {len(chosen)}")
    if ids.is_actor_call(chosen) != actor_call:
        raise InvalidArgument(f"{what}: a {'method call' if actor_call else 'task'}'s task_id must have the lowest "
                              f"bit of its last byte {'set' if actor_call else 'clear'}")
    return chosen


def actor_creation(request: client_api_pb2.CreateActorRequest, job_id: bytes, session_namespace: str,
                   max_args_bytes: int) -> BuiltCall:
    what = f"actor {request.class_name!r}"
    import_names.split(request.class_name)
    opts = request.options
    if opts.lifetime not in _LIFETIMES:
        raise InvalidArgument(f"{what}: lifetime must be 'detached', 'non_detached' or '', got {opts.lifetime!r}")
    for field in ("max_restarts", "max_task_retries"):
        if getattr(opts, field) < -1:
            raise InvalidArgument(f"{what}: {field} must be >= -1, got {getattr(opts, field)}")
    if opts.max_concurrency > 100_000:
        raise InvalidArgument(f"{what}: max_concurrency must be at most 100000, got {opts.max_concurrency}")
    namespace = opts.namespace if opts.HasField("namespace") else session_namespace
    if opts.HasField("namespace") and not opts.namespace:
        raise InvalidArgument(f'{what}: "" is not a namespace; leave it unset for the session\'s')
    document, deps, nested = call_arguments(request.args, request.kwargs, max_args_bytes, what)
    detached = opts.lifetime == "detached"
    actor_id = ids.new_unique_id()
    spec = raylet_pb2.TaskSpec(
        task_id=ids.new_task_id(), job_id=job_id, import_name=request.class_name,
        function_name=f"{request.class_name.split(':', 1)[1]}.__init__", args=document, dependencies=deps,
        nested_refs=nested, num_returns=1, max_retries=0, actor_id=actor_id, neutral=True)
    spec.actor_creation.CopyFrom(raylet_pb2.ActorCreation(
        actor_id=actor_id, class_name=request.class_name, max_restarts=opts.max_restarts,
        max_task_retries=opts.max_task_retries, max_concurrency=opts.max_concurrency or 1, detached=detached,
        name=opts.name, namespace=namespace, scoped=not opts.name and not detached))
    spec.resources.amounts.update(_resources(opts.num_cpus if opts.HasField("num_cpus") else 0.0,
                                             opts.num_gpus, opts.memory, dict(opts.resources), what))
    return BuiltCall(spec, [*deps, *nested])
