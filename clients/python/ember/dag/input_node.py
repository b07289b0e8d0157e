"""InputNode: the value a DAG is executed with (`dag.execute(...)`), and
InputAttributeNode: a part of it (`inp[0]`, `inp["k"]`, `inp.attr`)."""

from __future__ import annotations

from typing import Any

from ember.dag.dag_node import DAGNode

_KEY_ERROR = "Please only use int index or str as first-level key to access fields of dag input."


class DAGInputData:
    """What an InputNode stands for when execute() got several arguments (or
    keywords, or none): `[i]` is the i-th argument, `["k"]` keyword k."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = list(args)
        self._kwargs = kwargs

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self._args[key]
        if isinstance(key, str):
            return self._kwargs[key]
        raise ValueError(_KEY_ERROR)

    def __repr__(self) -> str:
        return f"DAGInputData({', '.join([*map(repr, self._args), *(f'{k}={v!r}' for k, v in self._kwargs.items())])})"


class InputNode(DAGNode):
    """The graph's input, used inside `with InputNode() as inp:`. With one
    argument and no keywords, execute(x) makes it x; otherwise a
    DAGInputData of all of them."""

    _is_dag_input = True

    def __init__(self, *args: Any, input_type: Any = None, **kwargs: Any) -> None:
        # Set first: __getattr__ below makes a node of any missing attribute.
        self._attribute_nodes: dict[tuple[str, int | str], InputAttributeNode] = {}
        self._in_context = False
        if args or kwargs:
            raise ValueError("InputNode should not take any args or kwargs.")
        self.input_type = input_type  # accepted, as Ray's (it only labels inputs for its UIs)
        super().__init__([], {}, {}, {})

    def __enter__(self) -> "InputNode":
        self._in_context = True
        return self

    def __exit__(self, *exc: Any) -> None:
        pass  # the node stays usable after the block, as in Ray

    def _input_value(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self._in_context:
            raise AssertionError("InputNode is a singleton instance that should be only used in context manager "
                                 "for dag building and execution. See the docstring of class InputNode for "
                                 "examples.")  # Ray's error
        if len(args) == 1 and not kwargs:
            return args[0]
        return DAGInputData(*args, **kwargs)

    def _attribute(self, key: int | str, accessor: str) -> "InputAttributeNode":
        # One node per field; `inp.x` and `inp["x"]` are different fields of
        # one object (Ray keys by name alone, so the second gets the first's).
        node = self._attribute_nodes.get((accessor, key))
        if node is None:
            node = self._attribute_nodes[(accessor, key)] = InputAttributeNode(self, key, accessor)
        return node

    def __getattr__(self, key: str) -> "InputAttributeNode":
        if key.startswith("__") and key.endswith("__") or "_attribute_nodes" not in vars(self):
            # Protocol lookups (copy, pickle) must not become input fields,
            # nor a lookup before __init__ (unpickling) recurse.
            raise AttributeError(key)
        return self._attribute(key, "__getattr__")

    def __getitem__(self, key: int | str) -> "InputAttributeNode":
        if not isinstance(key, (int, str)):
            raise AssertionError(_KEY_ERROR)  # Ray's error
        return self._attribute(key, "__getitem__")

    def _label(self) -> str:
        return "input"


class InputAttributeNode(DAGNode):
    """One field of the input: an index or key of it (`inp[0]`, `inp["k"]`)
    or an attribute (`inp.x`); with several execute() arguments, `[i]` is
    the i-th and `.k` / `["k"]` keyword k."""

    def __init__(self, dag_input_node: InputNode, key: int | str, accessor_method: str) -> None:
        self._key = key
        super().__init__([], {}, {}, {"dag_input_node": dag_input_node, "key": key,
                                      "accessor_method": accessor_method})

    @property
    def key(self) -> int | str:
        return self._key

    def _execute_impl(self, args: tuple[Any, ...], kwargs: dict[str, Any], other: dict[str, Any]) -> Any:
        value, key = other["dag_input_node"], other["key"]
        if isinstance(value, DAGInputData) or isinstance(key, int) or other["accessor_method"] == "__getitem__":
            return value[key]
        return getattr(value, key)

    def _label(self) -> str:
        return repr(self._key)
