"""Ember: a distributed task and actor runtime for Python.

    import ember
    ember.init()

    @ember.remote
    def f(x):
        return x * 2

    print(ember.get([f.remote(i) for i in range(10)]))

The names follow Ray Core's, so `import ember as ray` runs Ray Core programs.
This module is the public surface (tests/test_public_api.py pins it).
"""

from ember import actor, exceptions, util
from ember._private.actor import get_actor, kill, method
from ember._private.object_ref import ObjectRef
from ember._private.remote_function import remote
from ember._private.runtime import (
    available_resources,
    cancel,
    cluster_resources,
    get,
    init,
    is_initialized,
    nodes,
    put,
    shutdown,
    wait,
)
from ember._private.runtime_context import get_runtime_context

__version__ = "0.1.0"

__all__ = [
    "ObjectRef",
    "actor",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "util",
    "wait",
    "__version__",
]
