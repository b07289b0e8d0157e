"""DAGNode: a call bound to its arguments (`f.bind(...)`), run by
`execute()`. Its arguments may be other nodes, at the top level or nested
inside lists, dicts or any picklable value; those run first."""

from __future__ import annotations

import uuid
from typing import Any

from ember.dag import executor, scanner


class DAGNode:
    """A node of a task graph: bound arguments (values and other nodes),
    options, and arguments of its own kind (`other_args_to_resolve`: the
    actor of a method call, the InputNode of an attribute), resolved alike."""

    # InputNode: its value is what execute() was given (one per DAG).
    _is_dag_input = False

    def __init__(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], options: dict[str, Any],
                 other_args_to_resolve: dict[str, Any]) -> None:
        self._bound_args = args
        self._bound_kwargs = kwargs
        self._bound_options = options
        self._bound_other_args_to_resolve = other_args_to_resolve
        self._stable_uuid = uuid.uuid4().hex
        # The nodes this one needs (each once, in Ray's order: args, kwargs,
        # other args), and which arguments hold nodes below the top level
        # (only those are rebuilt at each execute).
        children: dict[int, DAGNode] = {}
        self._nested: set[int] = set()
        for value in self._slots():
            if isinstance(value, DAGNode):
                children.setdefault(id(value), value)
                continue
            found = scanner.find(value, DAGNode)
            if found:
                self._nested.add(id(value))
            for node in found:
                children.setdefault(id(node), node)
        self._children = list(children.values())

    def _slots(self) -> list[Any]:
        return [*self._bound_args, *self._bound_kwargs.values(), *self._bound_other_args_to_resolve.values()]

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Run the graph ending here, each node once: a function or method
        node gives its ObjectRef(s), a ClassNode an actor handle, a
        MultiOutputNode a list. `args`/`kwargs` are the InputNode's value."""
        return executor.run(self, args, kwargs)

    def experimental_compile(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("experimental_compile (Ray Compiled Graphs) is not supported by Ember; "
                                  "run the graph with dag.execute(...)")

    def _resolved(self, results: dict[int, Any]) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
        """This node's arguments with each node in them replaced by its
        result. A node nested in a value becomes its result there (an
        ObjectRef stays a ref, as when passed to .remote() that way)."""

        def resolve(value: Any) -> Any:
            if isinstance(value, DAGNode):
                return results[id(value)]
            if id(value) in self._nested:
                return scanner.replace(value, DAGNode, lambda node: results[id(node)])
            return value

        return (tuple(resolve(v) for v in self._bound_args),
                {k: resolve(v) for k, v in self._bound_kwargs.items()},
                {k: resolve(v) for k, v in self._bound_other_args_to_resolve.items()})

    def _execute_impl(self, args: tuple[Any, ...], kwargs: dict[str, Any], other: dict[str, Any]) -> Any:
        """Run this node once, its arguments resolved."""
        raise NotImplementedError

    def get_args(self) -> tuple[Any, ...] | list[Any]:
        return self._bound_args

    def get_kwargs(self) -> dict[str, Any]:
        return self._bound_kwargs

    def get_options(self) -> dict[str, Any]:
        return self._bound_options

    def get_other_args_to_resolve(self) -> dict[str, Any]:
        return self._bound_other_args_to_resolve

    def get_stable_uuid(self) -> str:
        return self._stable_uuid

    def __getattr__(self, attr: str) -> Any:
        # Only called for names the node lacks: say what to do instead (Ray's words).
        if attr == "bind":
            raise AttributeError(f".bind() cannot be used again on {type(self)} ")
        if attr == "remote":
            raise AttributeError(f".remote() cannot be used on {type(self)}. To execute the task graph for this "
                                 "node, use .execute().")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._label()})"

    def _label(self) -> str:
        return self._stable_uuid[:8]
