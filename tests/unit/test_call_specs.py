"""Task specs from client API requests (services/raylet/call_specs.py), without sockets."""

import msgpack
import pytest

from ember.v1 import client_api_pb2 as api
from ember_common import ids
from ember_common.errors import InvalidArgument
from ember_raylet import call_specs

JOB = b"\0\0\0\7"
A, B = bytes([1]) * 20, bytes([2]) * 20


def _task(**fields):
    return call_specs.task_call(api.Call(**fields), JOB, 1 << 20, 3)


def test_a_function_call_becomes_a_neutral_spec_named_by_import():
    built = _task(function="pkg.mod:fn", args=msgpack.packb([1, "a"]), kwargs=msgpack.packb({"k": b"v"}),
                  options=api.TaskOptions(num_cpus=2, num_gpus=1, resources={"accel": 1}, num_returns=2,
                                          max_retries=-1, retry_exceptions=True))
    spec = built.spec
    assert spec.import_name == "pkg.mod:fn" and not spec.function_id and spec.neutral
    assert spec.function_name == "fn" and spec.job_id == JOB and spec.num_returns == 2
    assert dict(spec.resources.amounts) == {"CPU": 2.0, "GPU": 1.0, "accel": 1.0}
    assert spec.max_retries == -1 and spec.retry_exceptions
    assert msgpack.unpackb(spec.args) == [[1, "a"], {"k": b"v"}]
    assert not ids.is_actor_call(spec.task_id)


def test_defaults_are_rays():
    spec = _task(function="m:f").spec
    assert dict(spec.resources.amounts) == {"CPU": 1.0}
    assert spec.num_returns == 1 and spec.max_retries == call_specs.DEFAULT_TASK_RETRIES
    assert msgpack.unpackb(spec.args) == [[], {}]


def test_top_level_refs_are_dependencies_and_deeper_ones_nested():
    args = msgpack.packb([msgpack.ExtType(1, A), [msgpack.ExtType(1, B)]])
    kwargs = msgpack.packb({"x": msgpack.ExtType(1, A)})
    built = _task(function="m:f", args=args, kwargs=kwargs)
    assert list(built.spec.dependencies) == [A]
    assert list(built.spec.nested_refs) == [B]
    assert sorted(built.refs) == sorted([A, B])


def test_a_method_call():
    actor = bytes(range(16))
    built = _task(method=api.ActorMethod(actor_id=actor, method="inc"), options=api.TaskOptions(num_returns=0))
    spec = built.spec
    assert spec.actor_id == actor and spec.method_name == "inc" and spec.num_returns == 0
    assert ids.is_actor_call(spec.task_id) and not spec.resources.amounts and spec.max_retries == 0


def test_chosen_task_ids_are_kept_and_checked():
    chosen = bytes(15) + b"\x02"
    assert _task(function="m:f", task_id=chosen).spec.task_id == chosen
    with pytest.raises(InvalidArgument, match="call 3: a task's task_id must have the lowest bit"):
        _task(function="m:f", task_id=bytes(15) + b"\x03")


@pytest.mark.parametrize("fields,match", [
    ({"function": "m.f"}, "not an importable name"),
    ({"function": "m:f", "args": msgpack.packb("x")}, "must be a MessagePack array"),
    ({"function": "m:f", "args": b"\x92\x01"}, "not a neutral value"),
    ({"function": "m:f", "args": msgpack.packb([b"x" * (1 << 20)])}, "more than the 1048576"),
    ({"function": "m:f", "options": api.TaskOptions(num_cpus=float("nan"))}, "non-negative"),
    ({"function": "m:f", "options": api.TaskOptions(max_retries=-2)}, "max_retries"),
    ({"method": api.ActorMethod(actor_id=bytes(16), method="__init__")}, "not a method name"),
    ({"method": api.ActorMethod(actor_id=bytes(16), method="m"), "options": api.TaskOptions(num_cpus=1)},
     "takes no resources"),
])
def test_bad_calls_say_what_to_fix(fields, match):
    with pytest.raises(InvalidArgument, match=match) as info:
        _task(**fields)
    assert str(info.value).startswith("call 3: ")


def _actor(**options):
    request = api.CreateActorRequest(class_name="pkg.mod:Cls", args=msgpack.packb([1]),
                                     options=api.ActorOptions(**options))
    return call_specs.actor_creation(request, JOB, "session-ns", 1 << 20).spec


def test_an_actor_creation():
    spec = _actor(name="c", lifetime="detached", max_restarts=2, max_task_retries=-1, max_concurrency=4, num_cpus=1)
    creation = spec.actor_creation
    assert spec.import_name == "pkg.mod:Cls" and spec.neutral and spec.num_returns == 1
    assert creation.actor_id == spec.actor_id and creation.name == "c" and creation.namespace == "session-ns"
    assert creation.detached and not creation.scoped and creation.max_restarts == 2
    assert creation.max_task_retries == -1 and creation.max_concurrency == 4
    assert dict(spec.resources.amounts) == {"CPU": 1.0}


def test_an_unnamed_actor_is_scoped_and_holds_no_cpu():
    spec = _actor(namespace="other")
    assert spec.actor_creation.scoped and not spec.actor_creation.detached
    assert spec.actor_creation.namespace == "other" and not spec.resources.amounts
    assert spec.actor_creation.max_concurrency == 1


@pytest.mark.parametrize("options,match", [
    ({"lifetime": "forever"}, "lifetime"),
    ({"max_restarts": -2}, "max_restarts"),
    ({"namespace": ""}, "is not a namespace"),
])
def test_bad_actor_options(options, match):
    with pytest.raises(InvalidArgument, match=match):
        _actor(**options)
