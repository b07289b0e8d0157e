"""What a client's batch must hold for the raylet to act on it: ids of the
right size, and task specs that make sense. A violation is the client's
fault (ProtocolError), reported to it; nothing of the batch's rest is applied."""

from __future__ import annotations

from ember.v1 import raylet_pb2

from ember_common import ids, import_names, trace_context
from ember_common.errors import InvalidArgument, ProtocolError
from ember_common.runtime_env_packages import digest_of
from ember_common.runtime_env_spec import ResolvedEnv


def check_object_id(object_id: bytes) -> None:
    if len(object_id) != ids.OBJECT_ID_SIZE:
        raise ProtocolError(f"object_id must be {ids.OBJECT_ID_SIZE} bytes, got {len(object_id)}")


def check_task_spec(spec: raylet_pb2.TaskSpec) -> None:
    """Everything but whether an actor it creates exists already (the
    actor table's to say)."""
    if len(spec.task_id) != ids.UNIQUE_ID_SIZE:
        raise ProtocolError(f"task_id must be {ids.UNIQUE_ID_SIZE} bytes, got {len(spec.task_id)}")
    if not 1 <= spec.num_returns <= 10_000 and spec.num_returns != 0:
        raise ProtocolError(f"num_returns must be 0..10000, got {spec.num_returns}")
    method_call = bool(spec.actor_id) and not spec.HasField("actor_creation")
    if spec.import_name:
        if spec.function_id:
            raise ProtocolError("a task names its code by function_id or by import_name, not both")
        try:
            import_names.split(spec.import_name)
        except InvalidArgument as e:
            raise ProtocolError(str(e)) from None
    elif len(spec.function_id) != 32 and not (method_call and not spec.function_id):
        # (a method call names its method; a handle made from a name has no function id)
        raise ProtocolError("function_id must be a 32-byte content hash")
    for name, amount in spec.resources.amounts.items():
        if amount < 0:
            raise ProtocolError(f"resource {name!r} requested a negative amount")
    for object_id in (*spec.dependencies, *spec.nested_refs):
        check_object_id(object_id)
    if spec.runtime_env:
        try:
            env = ResolvedEnv.from_json(spec.runtime_env)
        except ValueError as e:
            raise ProtocolError(str(e)) from None
        if env.to_json() != spec.runtime_env:
            raise ProtocolError("runtime_env must be in canonical form (ResolvedEnv.to_json)")
        for uri in filter(None, (env.working_dir, *env.py_modules)):
            try:
                digest_of(uri)
            except ValueError as e:
                raise ProtocolError(str(e)) from None
    if spec.traceparent or spec.tracestate or spec.baggage:  # (set only where tracing is on)
        try:
            trace_context.check(spec.traceparent, spec.tracestate, spec.baggage)
        except ValueError as e:
            raise ProtocolError(str(e)) from None
    if spec.HasField("actor_creation"):
        creation = spec.actor_creation
        if len(creation.actor_id) != ids.UNIQUE_ID_SIZE or spec.actor_id != creation.actor_id:
            raise ProtocolError(f"actor_creation.actor_id must be {ids.UNIQUE_ID_SIZE} bytes and equal actor_id")
        if spec.num_returns != 1:
            raise ProtocolError("an actor creation task has exactly one return (the ready object)")
    elif spec.actor_id:
        if len(spec.actor_id) != ids.UNIQUE_ID_SIZE or not spec.method_name:
            raise ProtocolError(f"an actor call needs a {ids.UNIQUE_ID_SIZE}-byte actor_id and a method_name")
