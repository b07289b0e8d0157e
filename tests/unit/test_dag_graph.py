"""The DAG API's graph logic, without a cluster: finding nodes nested in
arguments, the order nodes run in (each once), the InputNode's value and
its fields, and the errors Ray raises while building or executing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import ember
from ember.dag import ClassMethodNode, ClassNode, DAGInputData, DAGNode, FunctionNode, InputAttributeNode, InputNode, \
    MultiOutputNode
from ember.dag import executor, scanner


class Step(DAGNode):
    """A node that records its run in `log` and returns (name, its resolved args)."""

    def __init__(self, name: str, log: list[str], *args: Any, **kwargs: Any) -> None:
        self.name, self.log = name, log
        super().__init__(args, kwargs, {}, {})

    def _execute_impl(self, args: tuple, kwargs: dict, other: dict) -> Any:
        self.log.append(self.name)
        return (self.name, args, kwargs)


@dataclasses.dataclass
class Holder:
    inner: Any


@ember.remote
def f(x, y=0):
    return x + y


@ember.remote
class Log:
    def __init__(self, start=()):
        self.items = list(start)

    def add(self, item):
        self.items.append(item)
        return list(self.items)

    def bind(self):  # a method named like the API: reached as a method
        return "bound"


def test_nodes_are_found_nested_anywhere_each_once_and_replaced_in_a_copy():
    a, b = Step("a", []), Step("b", [])
    value = [1, {"k": (a, Holder(b))}, a, "text"]
    assert scanner.find(value, DAGNode) == [a, b]
    assert scanner.find("text", DAGNode) == [] and scanner.find(Holder([1, 2]), DAGNode) == []
    replaced = scanner.replace(value, DAGNode, lambda node: node.name.upper())
    assert replaced == [1, {"k": ("A", Holder("B"))}, "A", "text"]
    assert value[1]["k"][0] is a  # the original is untouched


def test_a_value_pickle_cannot_walk_holds_no_node_it_finds_and_arrays_survive_replacement():
    import threading

    assert scanner.find([threading.Lock(), Step("a", [])], DAGNode) == []  # fails when sent, naming the argument
    array = np.arange(100_000)
    out = scanner.replace([array, Step("a", [])], DAGNode, lambda node: node.name)
    assert out[1] == "a" and np.array_equal(out[0], array)


def test_a_diamond_runs_each_node_once_children_first_in_ray_order():
    log: list[str] = []
    src = Step("src", log)
    left, right = Step("left", log, src), Step("right", log, [src])
    join = Step("join", log, left, k={"r": right})
    assert executor.children_first(join) == [src, left, right, join]
    name, args, kwargs = join.execute()
    assert log == ["src", "left", "right", "join"]
    assert name == "join" and args[0][0] == "left" and kwargs["k"]["r"][0] == "right"
    assert right.execute()[1] == ([("src", (), {})],)  # a nested node's result, in place


def test_a_long_chain_runs_without_recursion():
    log: list[str] = []
    node = Step("0", log)
    for i in range(1, 5000):
        node = Step(str(i), log, node)
    node.execute()
    assert len(log) == 5000 and log[0] == "0" and log[-1] == "4999"


def test_the_input_is_the_one_argument_or_all_of_them():
    with InputNode() as inp:
        fields = MultiOutputNode([inp[0], inp.x, inp["k"]])
    assert inp.execute(5) == 5
    assert isinstance(inp.execute(), DAGInputData) and isinstance(inp.execute(1, 2), DAGInputData)
    assert fields.execute(1, x=2, k=3) == [1, 2, 3]
    assert isinstance(inp[0], InputAttributeNode) and inp[0] is inp[0] and inp.x.key == "x"
    assert MultiOutputNode([inp[1], inp["k"]]).execute({1: "one", "k": "kay"}) == ["one", "kay"]


def test_an_input_field_of_one_object_is_its_attribute_or_item():
    with InputNode() as inp:
        attr, item, index = inp.inner, inp["inner"], inp[1]
    assert attr.execute(Holder(7)) == 7
    assert item.execute({"inner": 8}) == 8 and index.execute([0, 9]) == 9
    with pytest.raises(AttributeError):
        attr.execute({"inner": 8})  # an attribute, not a key (as Ray)
    with pytest.raises(IndexError):
        index.execute()  # executed with no input: Ray's error
    with pytest.raises(KeyError):
        item.execute(other=1)


def test_input_node_misuse_fails_as_in_ray():
    outside = InputNode()
    with pytest.raises(AssertionError, match="context manager"):
        outside.execute(1)
    with InputNode() as one, InputNode() as two:
        pair = MultiOutputNode([one, two])
    with pytest.raises(AssertionError, match="only have one unique InputNode"):
        pair.execute(1)
    with pytest.raises(AssertionError, match="int index or str"):
        one[1.5]
    with pytest.raises(ValueError, match="should not take any args"):
        InputNode(1)
    assert not hasattr(one, "__deepcopy__")  # protocol lookups are not input fields
    with pytest.raises(ValueError, match="Invalid input type"):
        MultiOutputNode(one)
    assert MultiOutputNode((one[0], [one[1]])).execute(1, 2) == [1, [2]]


def test_function_bind_makes_a_node_with_the_options_and_refuses_misuse():
    node = f.options(num_cpus=0).bind(1, y=2)
    assert isinstance(node, FunctionNode)
    assert node.get_args() == (1,) and node.get_kwargs() == {"y": 2} and node.get_options()["num_cpus"] == 0
    assert f.bind(1).get_options()["num_cpus"] == 1
    with pytest.raises(AttributeError, match="cannot be used again"):
        node.bind(2)
    with pytest.raises(AttributeError, match="use .execute()"):
        node.remote()
    with pytest.raises(AttributeError):
        node.options(num_cpus=1)  # as in Ray: options go before bind
    with pytest.raises(NotImplementedError, match="experimental_compile"):
        node.experimental_compile()


def test_class_nodes_chain_their_calls_and_refuse_the_input_in_the_constructor():
    with InputNode() as inp:
        with pytest.raises(ValueError, match="cannot be used as args"):
            Log.bind(inp)
        with pytest.raises(ValueError, match="cannot be used as args"):
            Log.bind([inp])
        assert isinstance(Log.bind(inp[0]), ClassNode)  # a field is let through, as Ray does
    actor = Log.options(max_concurrency=2).bind(())
    assert actor.get_options()["max_concurrency"] == 2
    first, second = actor.add.bind("a"), actor.add.options(name="second").bind("b")
    assert isinstance(first, ClassMethodNode) and second.get_method_name() == "add"
    assert second.get_other_args_to_resolve()["prev_class_method_call"] is first
    assert second.get_options() == {"name": "second"}
    assert actor.bind.bind().get_method_name() == "bind"  # the class's own method
    with pytest.raises(AttributeError, match="no method 'nope'"):
        actor.nope
    with pytest.raises(AttributeError, match="Use .bind()"):
        actor.add.remote("c")
    with pytest.raises(ValueError, match="unknown option"):
        actor.add.options(num_cpus=1)


def test_import_ember_does_not_load_the_dag_package():
    code = ("import sys, ember\n"
            "ember.remote(lambda x: x)\n"
            "ember.remote(type('K', (), {}))\n"
            "assert 'ember.dag' not in sys.modules, 'ember.dag loaded'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
