"""Packing a call's (args, kwargs) into a TaskSpec and back.

One pickle for the whole call on the hot path. Top-level ObjectRef
arguments become placeholders resolved by the raylet before the task runs
(their values arrive with the task); refs nested deeper stay refs and are
borrowed by the task. Arguments too large to travel inline are put in the
object store first and passed like ObjectRef arguments, as Ray does.
"""

from __future__ import annotations

from typing import Any

from ember._private import serialization
from ember._private.object_ref import ObjectRef
from ember_common import ids


class _Dep:
    """Placeholder for the value of dependency `index`."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> Any:
        return (_Dep, (self.index,))


def pack(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
         function_name: str = "the task") -> tuple[bytes, list[bytes], list[bytes], list[ObjectRef]]:
    """Returns (encoded args, dependency ids, nested ref ids, refs to keep
    alive until the task is submitted). An argument that cannot be pickled
    raises TypeError naming it and `function_name`."""
    deps: list[bytes] = []
    keep: list[ObjectRef] = []

    def sub(a: Any) -> Any:
        if isinstance(a, ObjectRef):
            deps.append(a.binary())
            return _Dep(len(deps) - 1)
        return a

    call = (tuple(sub(a) for a in args), {k: sub(v) for k, v in kwargs.items()})
    try:
        so = serialization.serialize(call)
    except TypeError:
        _raise_unpicklable(args, kwargs, function_name)
        raise
    if so.total_size >= client.inline_threshold:
        # Put large arguments in the store, one object each.
        def big(a: Any) -> Any:
            if isinstance(a, _Dep):
                return a
            part = serialization.serialize(a)
            if part.total_size < client.inline_threshold // 4:
                return a
            object_id = ids.new_put_id()
            client.put_value(client.encode(object_id, part))
            keep.append(ObjectRef(object_id, client))
            deps.append(object_id)
            return _Dep(len(deps) - 1)

        call = (tuple(big(a) for a in call[0]), {k: big(v) for k, v in call[1].items()})
        so = serialization.serialize(call)
    return so.to_bytes(), deps, so.nested_ids, keep


def _raise_unpicklable(args: tuple[Any, ...], kwargs: dict[str, Any], function_name: str) -> None:
    """Raise TypeError naming the first argument that cannot be pickled."""
    named = [(f"argument {i + 1}", a) for i, a in enumerate(args)]
    named += [(f"argument {k!r}", v) for k, v in kwargs.items()]
    for which, value in named:
        try:
            serialization.serialize(value)
        except TypeError:
            raise TypeError(f"cannot send {which} of {function_name}(): "
                            f"{serialization.why_unpicklable(value)}") from None


def unpack(data: bytes, dep_values: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    (args, kwargs), _ = serialization.deserialize(data)

    def sub(a: Any) -> Any:
        return dep_values[a.index] if isinstance(a, _Dep) else a

    return tuple(sub(a) for a in args), {k: sub(v) for k, v in kwargs.items()}
