"""Checking a call's arguments against the remote function's (or actor
method's) parameters at `.remote()`, as Ray does: a wrong argument count
fails in the caller with TypeError, not later on a worker.

The parameters are kept as (name, kind, has a default) only: a check travels
inside actor handles (pickled), and defaults need not be picklable. Calls
with positional arguments only, the common case, are checked by counting;
anything else binds against an inspect.Signature built once.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable

_Kind = type(inspect.Parameter.POSITIONAL_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_DEFAULT = object()  # stands for any default when binding

Params = tuple[tuple[str, int, bool], ...]


class CallCheck:
    __slots__ = ("name", "_params", "_min", "_max", "_signature")

    def __init__(self, name: str, params: Params | None) -> None:
        self.name = name  # as error messages call it: "name()"
        self._params = params  # None: unknown (a builtin), nothing is checked
        self._signature: inspect.Signature | None = None
        self._min, self._max = _positional_range(params)

    @classmethod
    def of_function(cls, fn: Callable[..., Any], name: str) -> "CallCheck":
        return cls(name, _params(fn, drop_first=False))

    @classmethod
    def of_method(cls, klass: type, method: str, name: str) -> "CallCheck":
        """A method as called on an instance (without self); `__init__` of a
        class without one takes no arguments."""
        static = inspect.getattr_static(klass, method, None)
        if method == "__init__" and static is object.__init__:
            return cls(name, ())
        if isinstance(static, (staticmethod, classmethod)):
            return cls(name, _params(getattr(klass, method), drop_first=False))
        return cls(name, _params(getattr(klass, method), drop_first=True))

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise TypeError if the call cannot bind to the parameters."""
        if not kwargs and self._min <= len(args) <= self._max:
            return
        if self._params is None:
            return
        if self._signature is None:
            self._signature = inspect.Signature([
                inspect.Parameter(name, _Kind(kind), default=_DEFAULT if has_default else
                                  inspect.Parameter.empty) for name, kind, has_default in self._params])
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.name}() cannot take these arguments: {e}") from None

    def __reduce__(self) -> Any:
        return CallCheck, (self.name, self._params)


def _params(fn: Callable[..., Any], drop_first: bool) -> Params | None:
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return None
    if drop_first and parameters and parameters[0].kind in _POSITIONAL:
        parameters = parameters[1:]
    return tuple((p.name, int(p.kind), p.default is not inspect.Parameter.empty) for p in parameters)


def _positional_range(params: Params | None) -> tuple[int, int]:
    """How many positional arguments alone make a valid call: (min, max);
    an empty range if keywords are required (or nothing is known)."""
    if params is None:
        return 0, sys.maxsize  # unknown: every call passes
    kinds = [(_Kind(kind), has_default) for _, kind, has_default in params]
    if any(kind == inspect.Parameter.KEYWORD_ONLY and not has_default for kind, has_default in kinds):
        return 1, 0
    positional = [has_default for kind, has_default in kinds if kind in _POSITIONAL]
    most = sys.maxsize if any(kind == inspect.Parameter.VAR_POSITIONAL for kind, _ in kinds) else len(positional)
    return positional.count(False), most
