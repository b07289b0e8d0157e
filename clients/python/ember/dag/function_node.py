"""FunctionNode: a remote function bound to its arguments (`f.bind(...)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.dag.dag_node import DAGNode

if TYPE_CHECKING:
    from ember._private.remote_function import RemoteFunction


class FunctionNode(DAGNode):
    """A task of the graph: each execute submits it once (an ObjectRef, or
    what `.remote()` gives for its num_returns)."""

    def __init__(self, func_body: "RemoteFunction", func_args: tuple[Any, ...], func_kwargs: dict[str, Any],
                 func_options: dict[str, Any]) -> None:
        self._body = func_body
        super().__init__(func_args, func_kwargs, func_options, {})

    def _execute_impl(self, args: tuple[Any, ...], kwargs: dict[str, Any], other: dict[str, Any]) -> Any:
        return self._body._remote(args, kwargs, self._bound_options)

    def _label(self) -> str:
        return self._body.__qualname__
