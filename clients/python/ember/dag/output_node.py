"""MultiOutputNode: several nodes as one graph's result."""

from __future__ import annotations

from typing import Any

from ember.dag.dag_node import DAGNode


class MultiOutputNode(DAGNode):
    """Ends a graph with several outputs: execute() gives a list, each node
    replaced by its result (ObjectRefs for task and method nodes)."""

    def __init__(self, args: list[Any] | tuple[Any, ...]) -> None:
        if isinstance(args, tuple):
            args = list(args)
        if not isinstance(args, list):
            raise ValueError(f"Invalid input type for `args`, {type(args)}.")  # Ray's error
        super().__init__(args, {}, {}, {})

    def _execute_impl(self, args: tuple[Any, ...], kwargs: dict[str, Any], other: dict[str, Any]) -> list[Any]:
        return list(args)

    def _label(self) -> str:
        return f"{len(self._bound_args)} outputs"
