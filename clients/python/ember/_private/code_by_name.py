"""Loading Python code by its importable name ("package.module:function",
"package.module:Class") in a worker, for callers in other languages. The
module is imported from the worker's import path (the job's code search
path first); a function or class decorated with @ember.remote is unwrapped."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ember_common import import_names


def load(name: str) -> Any:
    """The function or class `name` names. Raises ImportError saying what
    was looked for where, and what to fix."""
    module_name, attribute = import_names.split(name)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"cannot import module {module_name!r} for {name!r}: {e}. The worker's import path "
                          f"starts {sys.path[:4]}; add the module's directory to the session's code search "
                          "path (codeSearchPath, JobConfig(code_search_path=...)) on the cluster's "
                          "machines") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no {attribute!r} (looked for {name!r}; the module "
                              f"was loaded from {getattr(sys.modules.get(module_name), '__file__', '?')})") from None
    # @ember.remote wraps: call what it wraps.
    from ember._private.actor import ActorClass
    from ember._private.remote_function import RemoteFunction

    if isinstance(target, RemoteFunction):
        return target._function
    if isinstance(target, ActorClass):
        return target._cls
    if not callable(target):
        raise ImportError(f"{name!r} names a {type(target).__name__}, not a function or class")
    return target
