"""Ember: a distributed task and actor runtime for Python.

    import ember
    ember.init()

    @ember.remote
    def f(x):
        return x * 2

    print(ember.get([f.remote(i) for i in range(10)]))

The names follow Ray Core's, so `import ember as ray` runs Ray Core programs.
This module is the public surface (tests/test_public_api.py pins it). Its
names load on first use: the services and worker processes import
`ember._private...` modules without paying for the whole SDK.
"""

import importlib as _importlib
from typing import Any as _Any

__version__ = "0.1.0"

# Public name -> (module, attribute; None for the module itself).
_EXPORTS: "dict[str, tuple[str, str | None]]" = {
    "DynamicObjectRefGenerator": ("ember._private.generators", "DynamicObjectRefGenerator"),
    "ObjectRef": ("ember._private.object_ref", "ObjectRef"),
    "ObjectRefGenerator": ("ember._private.generators", "ObjectRefGenerator"),
    "actor": ("ember.actor", None),
    "available_resources": ("ember._private.runtime", "available_resources"),
    "cancel": ("ember._private.runtime", "cancel"),
    "cloudpickle": ("ember.cloudpickle", None),
    "cluster_resources": ("ember._private.runtime", "cluster_resources"),
    "dag": ("ember.dag", None),
    "exceptions": ("ember.exceptions", None),
    "experimental": ("ember.experimental", None),
    "get": ("ember._private.runtime", "get"),
    "get_actor": ("ember._private.actor", "get_actor"),
    "get_gpu_ids": ("ember._private.runtime_context", "get_gpu_ids"),
    "get_runtime_context": ("ember._private.runtime_context", "get_runtime_context"),
    "init": ("ember._private.runtime", "init"),
    "is_initialized": ("ember._private.runtime", "is_initialized"),
    "job_config": ("ember.job_config", None),
    "kill": ("ember._private.actor", "kill"),
    "method": ("ember._private.actor", "method"),
    "nodes": ("ember._private.runtime", "nodes"),
    "put": ("ember._private.runtime", "put"),
    "remote": ("ember._private.remote_function", "remote"),
    "runtime_env": ("ember.runtime_env", None),
    "shutdown": ("ember._private.runtime", "shutdown"),
    "timeline": ("ember._private.timeline", "timeline"),
    "util": ("ember.util", None),
    "wait": ("ember._private.runtime", "wait"),
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> _Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'ember' has no attribute {name!r}") from None
    value = _importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # next time, a plain lookup
    return value


def __dir__() -> "list[str]":
    return sorted({*globals(), *_EXPORTS})
