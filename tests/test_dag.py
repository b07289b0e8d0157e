"""The DAG API on a real cluster, with Ray 2.60's semantics: chains and
diamonds (a shared node runs once per execute), the InputNode's fields,
actor nodes, MultiOutputNode, repeated executes and nested arguments."""

from __future__ import annotations

import dataclasses

import pytest

import ember
from ember import exceptions
from ember.dag import DAGInputData, InputNode, MultiOutputNode

pytestmark = pytest.mark.usefixtures("cluster")


@ember.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def inc(self, by=1):
        self.n += by
        return self.n

    def get(self):
        return self.n

    @ember.method(num_returns=2)
    def pair(self):
        self.n += 1
        return self.n, -self.n


@ember.remote
def counted(counter, x):
    ember.get(counter.inc.remote())
    return x


@ember.remote
def add(a, b):
    return a + b


@ember.remote
def double(x):
    return 2 * x


@ember.remote
def fields(*args, **kwargs):
    return args, kwargs


@ember.remote
def what_arrived(value):
    return type(value).__name__, value


@ember.remote
def fail(x):
    raise ValueError(f"bad {x}")


@ember.remote
def ask(counter):
    return ember.get(counter.get.remote())


@dataclasses.dataclass
class Box:
    content: object


@ember.remote
def unbox(items, mapping, box):
    # Nodes nested in arguments arrive as ObjectRefs, as Ray passes them.
    return ember.get(items[0]) + ember.get(mapping["k"]) + ember.get(box.content), type(items[0]).__name__


def test_a_chain_runs_with_the_input():
    with InputNode() as inp:
        dag = double.bind(add.bind(double.bind(inp), 1))
    ref = dag.execute(5)
    assert isinstance(ref, ember.ObjectRef)
    assert ember.get(ref) == 22


def test_a_diamond_runs_its_shared_node_once_per_execute():
    counter = Counter.remote()
    with InputNode() as inp:
        shared = counted.bind(counter, inp)
        dag = add.bind(add.bind(shared, 1), double.bind(shared))
    assert ember.get(dag.execute(10)) == 31
    assert ember.get(counter.get.remote()) == 1
    assert ember.get(dag.execute(20)) == 61
    assert ember.get(counter.get.remote()) == 2


def test_repeated_executes_take_their_own_input():
    with InputNode() as inp:
        dag = add.bind(inp, double.bind(inp))
    refs = [dag.execute(i) for i in range(5)]
    assert ember.get(refs) == [3 * i for i in range(5)]


def test_the_input_fields_by_index_key_and_attribute():
    with InputNode() as inp:
        dag = fields.bind(inp[0], inp.x, k=inp["k"])
    assert ember.get(dag.execute(1, x=2, k=3)) == ((1, 2), {"k": 3})
    # One input object: an attribute of it, a key or an index of it.
    with InputNode() as one:
        attribute, key, index = fields.bind(one.content), fields.bind(one["content"]), fields.bind(one[1])
    assert ember.get(attribute.execute(Box(4))) == ((4,), {})
    assert ember.get(key.execute({"content": 5})) == ((5,), {})
    assert ember.get(index.execute([0, 6])) == ((6,), {})


def test_executing_without_the_input_fails_as_in_ray():
    with InputNode() as inp:
        needs_field = double.bind(inp[0])
        takes_all = what_arrived.bind(inp)
    with pytest.raises(IndexError):
        needs_field.execute()
    kind, value = ember.get(takes_all.execute())
    assert kind == "DAGInputData" and isinstance(value, DAGInputData)
    assert ember.get(takes_all.execute(1, 2))[1][1] == 2


def test_an_input_ref_is_resolved_like_any_argument():
    with InputNode() as inp:
        dag = double.bind(inp)
    assert ember.get(dag.execute(ember.put(21))) == 42


def test_nested_nodes_arrive_as_refs_and_top_level_ones_as_values():
    dag = unbox.bind([double.bind(1)], {"k": double.bind(2)}, Box(double.bind(3)))
    assert ember.get(dag.execute()) == (12, "ObjectRef")
    assert ember.get(what_arrived.bind(double.bind(4)).execute()) == ("int", 8)


def test_a_class_node_is_a_new_actor_per_execute_called_in_bind_order():
    actor = Counter.bind(10)
    actor.inc.bind(1)  # bound first: runs before the call bound next
    second = actor.inc.bind(2)
    handle = actor.execute()
    assert isinstance(handle, ember.actor.ActorHandle)
    assert ember.get(handle.get.remote()) == 10
    # Executing the second call runs the first before it, on a new actor.
    assert ember.get(second.execute()) == 13
    last, created = MultiOutputNode([second, actor]).execute()
    assert ember.get(last) == 13 and ember.get(created.get.remote()) == 13  # one actor per execute
    assert ember.get(ask.bind(actor).execute()) == 10  # a ClassNode argument arrives as a handle


def test_a_handle_method_node_calls_the_live_actor_each_execute():
    counter = Counter.remote(100)
    with InputNode() as inp:
        dag = counter.inc.bind(inp)
    assert ember.get(dag.execute(1)) == 101
    assert ember.get(dag.execute(2)) == 103
    with pytest.raises(TypeError, match="cannot take these arguments"):
        counter.inc.bind(1, 2, 3)  # checked at bind, as Ray checks a handle's call


def test_a_method_with_several_returns_binds_to_one_node_per_return():
    counter = Counter.remote()
    positive, negative = counter.pair.bind()
    refs = MultiOutputNode([positive, negative]).execute()
    assert isinstance(refs, list) and all(isinstance(r, ember.ObjectRef) for r in refs)
    assert ember.get(refs) == [1, -1]  # one call for both
    assert ember.get(counter.get.remote()) == 1
    # On a class node the call is one node, giving both refs.
    assert ember.get(Counter.bind().pair.bind().execute()) == [1, -1]


def test_options_go_before_bind():
    assert ember.get(add.options(num_cpus=0).bind(1, 2).execute()) == 3
    assert len(fields.options(num_returns=2).bind(1, 2).execute()) == 2
    counter = Counter.options(max_concurrency=2).bind(0)
    assert ember.get(counter.pair.options(num_returns=1).bind().execute()) == (1, -1)
    handle = Counter.remote()
    assert ember.get(handle.pair.options(num_returns=1).bind().execute()) == (1, -1)


def test_a_failing_node_fails_the_nodes_after_it_and_bad_calls_fail_at_execute():
    dag = add.bind(fail.bind(1), 1)
    with pytest.raises(ValueError, match="bad 1"):
        ember.get(dag.execute())
    with pytest.raises(exceptions.TaskError):
        ember.get(dag.execute())
    with pytest.raises(TypeError, match="cannot take these arguments"):
        add.bind(1, 2, 3).execute()  # a function's arguments are checked when it is submitted, as in Ray
