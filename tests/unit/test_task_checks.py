"""What a submitted task spec must hold, checked before anything is applied."""

import pytest
from ember.v1 import raylet_pb2

from ember_common import ids
from ember_common.errors import ProtocolError
from ember_raylet.task_checks import check_object_id, check_task_spec
from tests.unit.raylet_parts import FN


def good(**fields):
    return raylet_pb2.TaskSpec(**{"task_id": ids.new_unique_id(), "function_id": FN, "num_returns": 1, **fields})


def creation(actor_id, **fields):
    spec = good(actor_id=actor_id, **fields)
    spec.actor_creation.actor_id = actor_id
    return spec


def test_a_well_formed_spec_passes():
    check_task_spec(good())
    check_task_spec(good(actor_id=ids.new_unique_id(), method_name="m"))
    check_task_spec(creation(ids.new_unique_id()))
    check_object_id(ids.new_put_id())


@pytest.mark.parametrize("spec, complaint", [
    (good(task_id=b"short"), "task_id"),
    (good(num_returns=10_001), "num_returns"),
    (good(function_id=b"x"), "function_id"),
    (good(dependencies=[b"bad"]), "object_id"),
    (good(actor_id=ids.new_unique_id()), "method_name"),
    (creation(b"short"), "actor_creation.actor_id"),
    (creation(ids.new_unique_id(), num_returns=2), "exactly one return"),
])
def test_a_malformed_spec_is_the_clients_fault(spec, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        check_task_spec(spec)


def test_a_negative_resource_is_refused():
    spec = good()
    spec.resources.amounts["CPU"] = -1
    with pytest.raises(ProtocolError, match="negative"):
        check_task_spec(spec)


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_trace_context_passes_whole():
    check_task_spec(good(traceparent=TRACEPARENT, tracestate="congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
                         baggage="user=alice,team=a%20b;prop=1"))
    check_task_spec(good(tracestate="", traceparent=TRACEPARENT))
    check_task_spec(good(traceparent=TRACEPARENT, tracestate=",".join(f"k{i}=v{i}" for i in range(32))))
    check_task_spec(good(traceparent="cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-later"))  # a later version


@pytest.mark.parametrize("fields, complaint", [
    ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"}, "VERSION-TRACEID-PARENTID-FLAGS"),
    ({"traceparent": TRACEPARENT.upper()}, "lowercase hex"),
    ({"traceparent": "ff" + TRACEPARENT[2:]}, "version ff"),
    ({"traceparent": TRACEPARENT + "-x"}, "exactly 4 fields"),
    ({"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"}, "all zeros"),
    ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"}, "all zeros"),
    ({"tracestate": "rojo=00f067aa0ba902b7"}, "without a traceparent"),
    ({"traceparent": TRACEPARENT, "tracestate": ",".join(f"k{i}=v{i}" for i in range(33))}, "33 entries; at most 32"),
    ({"traceparent": TRACEPARENT, "tracestate": "Rojo=1"}, "not key=value"),
    ({"traceparent": TRACEPARENT, "tracestate": "rojo"}, "not key=value"),
    ({"traceparent": TRACEPARENT, "tracestate": "rojo=1,rojo=2"}, "twice"),
    ({"baggage": "user=" + "a" * 8192}, "at most 8192"),
    ({"baggage": "no value here"}, "not key=value"),
    ({"baggage": ",".join(f"k{i}=v" for i in range(181))}, "at most 180"),
])
def test_a_malformed_trace_context_is_the_clients_fault(fields, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        check_task_spec(good(**fields))
