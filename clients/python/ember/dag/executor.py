"""One execution of a DAG: every node it reaches runs once, after the nodes
it needs (in the order Ray submits them), and each node's result replaces
it in the arguments of the nodes that use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.dag.dag_node import DAGNode


def children_first(root: "DAGNode") -> list["DAGNode"]:
    """The nodes `root` reaches, each once, every node after those it needs,
    in depth-first order (no recursion: a long chain must not hit Python's
    recursion limit)."""
    order: list[DAGNode] = []
    done: set[int] = set()
    stack = [(root, iter(root._children))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if id(child) not in done:
                stack.append((child, iter(child._children)))
                break
        else:
            stack.pop()
            done.add(id(node))
            order.append(node)
    return order


def run(root: "DAGNode", args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    order = children_first(root)
    if sum(node._is_dag_input for node in order) > 1:
        raise AssertionError("Each DAG should only have one unique InputNode.")  # Ray's error
    results: dict[int, Any] = {}
    for node in order:
        if node._is_dag_input:
            results[id(node)] = node._input_value(args, kwargs)
        else:
            results[id(node)] = node._execute_impl(*node._resolved(results))
    return results[id(root)]
