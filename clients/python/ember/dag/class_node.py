"""ClassNode: an actor class bound to its constructor's arguments
(`Actor.bind(...)`), and ClassMethodNode: a call of one of its methods
(`class_node.method.bind(...)`), or of a live actor's
(`handle.method.bind(...)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.dag.dag_node import DAGNode

if TYPE_CHECKING:
    from ember._private.actor import ActorClass, ActorHandle

# The keys of a method node's other_args_to_resolve (Ray's).
PARENT_CLASS_NODE_KEY = "parent_class_node"
PREV_CLASS_METHOD_CALL_KEY = "prev_class_method_call"
IS_CLASS_METHOD_OUTPUT_KEY = "is_class_method_output"


class ClassNode(DAGNode):
    """An actor of the graph: each execute creates it once (a new actor per
    execute) and gives its handle to the nodes that use it."""

    def __init__(self, cls: "ActorClass", cls_args: tuple[Any, ...], cls_kwargs: dict[str, Any],
                 cls_options: dict[str, Any]) -> None:
        self._body = cls
        # The last method call bound on this node: the next one runs after it,
        # so a graph calls the actor in the order its calls were bound.
        self._last_call: ClassMethodNode | None = None
        super().__init__(cls_args, cls_kwargs, cls_options, {})
        if any(child._is_dag_input for child in self._children):
            raise ValueError("InputNode handles user dynamic input the DAG, and cannot be used as args, kwargs, or "
                             "other_args_to_resolve in ClassNode constructor because it is not available at class "
                             "construction or binding time.")  # Ray's error

    def _execute_impl(self, args: tuple[Any, ...], kwargs: dict[str, Any], other: dict[str, Any]) -> "ActorHandle":
        return self._body._remote(args, kwargs, self._bound_options)

    def __getattr__(self, method_name: str) -> "_UnboundClassMethodNode":
        from ember._private.actor import READY_METHOD

        if method_name.startswith("_") and method_name != READY_METHOD:
            raise AttributeError(method_name)  # not a method name (and no lookup of ours recurses here)
        if method_name == READY_METHOD or method_name in self._body._info.methods:
            return _UnboundClassMethodNode(self, method_name)
        if method_name in ("bind", "remote"):
            return super().__getattr__(method_name)
        raise AttributeError(f"actor class {self._body.__qualname__} has no method {method_name!r}")

    def _label(self) -> str:
        return self._body.__qualname__


class _UnboundClassMethodNode:
    """`class_node.method`: bind() makes the call's node."""

    def __init__(self, actor: ClassNode, method_name: str) -> None:
        self._actor = actor
        self._method_name = method_name
        self._options: dict[str, Any] = {}

    def options(self, **options: Any) -> "_UnboundClassMethodNode":
        """Options for the call, replacing any given before (as in Ray)."""
        from ember._private.actor import METHOD_DEFAULTS
        from ember._private.remote_function import validate_options

        validate_options(options, METHOD_DEFAULTS, "an actor method")
        self._options = options
        return self

    def bind(self, *args: Any, **kwargs: Any) -> "ClassMethodNode":
        actor = self._actor
        node = ClassMethodNode(self._method_name, args, kwargs, self._options,
                               {PARENT_CLASS_NODE_KEY: actor, PREV_CLASS_METHOD_CALL_KEY: actor._last_call})
        actor._last_call = node
        return node

    def __getattr__(self, attr: str) -> Any:
        if attr == "remote":
            raise AttributeError(".remote() cannot be used on ClassMethodNodes. Use .bind() instead to express an "
                                 "symbolic actor call.")  # Ray's words
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")


class ClassMethodNode(DAGNode):
    """A call of an actor method: of the graph's ClassNode (after the call
    bound before it on that node) or of a live actor's handle. One of a
    handle method's several returns (num_returns > 1) is a ClassMethodNode
    too, picking its ref from the call's."""

    def __init__(self, method_name: str, method_args: tuple[Any, ...], method_kwargs: dict[str, Any],
                 method_options: dict[str, Any], other_args_to_resolve: dict[str, Any]) -> None:
        self._method_name = method_name
        super().__init__(method_args, method_kwargs, method_options, other_args_to_resolve)

    @property
    def is_class_method_output(self) -> bool:
        return bool(self._bound_other_args_to_resolve.get(IS_CLASS_METHOD_OUTPUT_KEY))

    def get_method_name(self) -> str:
        return self._method_name

    def _execute_impl(self, args: tuple[Any, ...], kwargs: dict[str, Any], other: dict[str, Any]) -> Any:
        if self.is_class_method_output:
            refs, index = args
            return refs[index]
        method = getattr(other[PARENT_CLASS_NODE_KEY], self._method_name)
        if self._bound_options:
            method = method.options(**self._bound_options)
        return method.remote(*args, **kwargs)

    def _label(self) -> str:
        return self._method_name


def bind_handle_method(handle: "ActorHandle", method_name: str, options: dict[str, Any], args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> ClassMethodNode | tuple[ClassMethodNode, ...]:
    """`handle.method.bind(...)`: the call's node, or, when the method has
    num_returns > 1, one node per return (a tuple), as in Ray. Calls of a
    handle are not ordered after each other: each runs when executed."""
    node = ClassMethodNode(method_name, args, kwargs, dict(options),
                           {PARENT_CLASS_NODE_KEY: handle, PREV_CLASS_METHOD_CALL_KEY: None})
    num_returns = options["num_returns"]
    if not isinstance(num_returns, int) or num_returns <= 1:
        return node
    return tuple(ClassMethodNode(f"return_idx_{i}", (node, i), {}, {},
                                 {IS_CLASS_METHOD_OUTPUT_KEY: True, PARENT_CLASS_NODE_KEY: handle})
                 for i in range(num_returns))
