"""@ember.remote on a function: RemoteFunction, its options and `.remote()`."""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any, Callable

from ember.v1 import raylet_pb2

from ember._private import generators, runtime, serialization, task_args, tracing
from ember._private.call_check import CallCheck
from ember._private.object_ref import ObjectRef
from ember._private import runtime_env_support
from ember_common import ids

if TYPE_CHECKING:
    from ember.dag.function_node import FunctionNode

# Ray's older way to name a placement group (tasks and actors); Ray 2.60
# still takes them. "default": none, unless the parent captures its children.
PLACEMENT_GROUP_OPTIONS: dict[str, Any] = {
    "placement_group": "default",
    "placement_group_bundle_index": -1,
    "placement_group_capture_child_tasks": None,
}

# Options a task accepts, with Ray's defaults.
TASK_DEFAULTS: dict[str, Any] = {
    "num_cpus": 1,
    "num_gpus": 0,
    "memory": 0,
    "object_store_memory": None,  # Ray: not implemented for tasks (only None)
    "resources": None,
    "num_returns": 1,
    "max_retries": 3,
    "retry_exceptions": False,
    "name": None,
    "scheduling_strategy": None,
    "label_selector": None,  # {"zone": "b"}: only on nodes with these labels
    "runtime_env": None,
    **PLACEMENT_GROUP_OPTIONS,
}


def validate_options(options: dict[str, Any], allowed: dict[str, Any], what: str) -> None:
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"unknown option {key!r} for {what}; known: {', '.join(sorted(allowed))}")
        if key in ("num_cpus", "num_gpus", "memory", "object_store_memory") and value is not None:
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number, got {value!r}")
        if key == "resources" and value is not None:
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (int, float)) and v >= 0 for k, v in value.items()):
                raise ValueError(f"resources must map names to non-negative numbers, got {value!r}")
            if {"CPU", "GPU", "memory", "object_store_memory"} & set(value):
                raise ValueError("use num_cpus / num_gpus / memory / object_store_memory instead of "
                                 "resources={'CPU'|'GPU'|'memory'|'object_store_memory': ...}")
        if key == "num_returns":
            generators.check_num_returns(value)
        if key == "max_retries" and (not isinstance(value, int) or value < -1):
            raise ValueError(f"max_retries must be an int >= -1, got {value!r}")
        if key == "scheduling_strategy" and value is not None:
            scheduling_strategy(value)  # raises on a bad one
        if key == "placement_group" and value not in ("default", None):
            from ember.util.placement_group import PlacementGroup

            if not isinstance(value, PlacementGroup):
                raise ValueError(f"placement_group must be a PlacementGroup, None or 'default', got {value!r}")
        if key == "placement_group_bundle_index" and (not isinstance(value, int) or value < -1):
            raise ValueError(f"placement_group_bundle_index must be an int >= -1, got {value!r}")
        if key == "placement_group_capture_child_tasks" and value not in (None, True, False):
            raise ValueError(f"placement_group_capture_child_tasks must be a bool or None, got {value!r}")
        if key == "label_selector" and value is not None:
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ValueError(f"label_selector must map label names to values (strings), got {value!r}")
        if key == "runtime_env":
            runtime_env_support.validate(value, what)


def scheduling_strategy(value: Any) -> raylet_pb2.SchedulingStrategy:
    from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

    kind = raylet_pb2.SchedulingStrategy
    if value is None or value == "DEFAULT" or isinstance(value, PlacementGroupSchedulingStrategy):
        return kind()  # a group's bundle is a matter of resources (task_request)
    if value == "SPREAD":
        return kind(kind=kind.SPREAD)
    if isinstance(value, NodeAffinitySchedulingStrategy):
        return kind(kind=kind.NODE_AFFINITY, node_id=bytes.fromhex(value.node_id), soft=value.soft)
    raise ValueError(f'scheduling_strategy must be "DEFAULT", "SPREAD", a NodeAffinitySchedulingStrategy or a '
                     f"PlacementGroupSchedulingStrategy, got {value!r}")


def validate_task_options(options: dict[str, Any]) -> None:
    validate_options(options, TASK_DEFAULTS, "a remote function")
    if options.get("object_store_memory") is not None:
        raise ValueError("Setting 'object_store_memory' is not implemented for tasks")  # (as Ray)


def resolve_strategy(opts: dict[str, Any]) -> Any:
    """The strategy a task or actor is placed by, as Ray decides it: its
    scheduling_strategy, else the placement_group= options, else, when its
    parent runs in a group that captures child tasks, that group (any bundle)."""
    strategy = opts.get("scheduling_strategy")
    group = opts.get("placement_group", "default")
    if group in ("default", None):  # (the common case, on every .remote(): no imports)
        if strategy is None and group == "default":
            ctx = runtime.task_context()
            capture = opts.get("placement_group_capture_child_tasks")
            if ctx.placement_group_id and (capture or (capture is None and ctx.capture_child_tasks)):
                from ember.util.placement_group import PlacementGroup
                from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

                return PlacementGroupSchedulingStrategy(PlacementGroup(ctx.placement_group_id), -1, capture)
        return strategy
    if strategy is not None:
        raise ValueError("give a placement group either as scheduling_strategy or as placement_group=, not both")
    from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return PlacementGroupSchedulingStrategy(group, opts["placement_group_bundle_index"],
                                            opts["placement_group_capture_child_tasks"])


def place(spec: raylet_pb2.TaskSpec, shape: dict[str, float], opts: dict[str, Any]) -> None:
    """Fill a spec's resources and scheduling from the resource request and
    the scheduling options (scheduling_strategy, placement_group=..., label_selector)."""
    strategy = resolve_strategy(opts)
    request = getattr(strategy, "task_request", None)
    spec.resources.amounts.update(request(shape) if request is not None else shape)
    if strategy is not None:
        spec.scheduling.CopyFrom(scheduling_strategy(strategy))
    if request is not None:  # in a group: whether its own children follow it there
        capture = strategy.placement_group_capture_child_tasks
        spec.placement_group_capture_child_tasks = (runtime.task_context().capture_child_tasks if capture is None
                                                    else bool(capture))
    if opts.get("label_selector"):
        spec.label_selector.update(opts["label_selector"])


def resource_request(opts: dict[str, Any]) -> dict[str, float]:
    shape = {"CPU": float(opts["num_cpus"] or 0), "GPU": float(opts["num_gpus"] or 0), "memory": float(opts["memory"] or 0),
             "object_store_memory": float(opts.get("object_store_memory") or 0)}
    shape.update({k: float(v) for k, v in (opts.get("resources") or {}).items()})
    return {k: v for k, v in shape.items() if v > 0}


class Exported:
    """A function or class shipped to workers once, by content hash, through
    the GCS function table."""

    _exported_target: Any
    _pickled: tuple[bytes, bytes] | None = None  # (function id, pickled)

    def _export(self, client: Any) -> bytes:
        if self._pickled is None:
            pickled = serialization.dumps_function(self._exported_target)
            self._pickled = (hashlib.sha256(pickled).digest(), pickled)
        function_id, pickled = self._pickled
        client.export_function(function_id, pickled)
        return function_id


class RemoteFunction(Exported):
    def __init__(self, function: Callable[..., Any], options: dict[str, Any]) -> None:
        validate_task_options(options)
        self._function = self._exported_target = function
        self._options = {**TASK_DEFAULTS, **options}
        if "num_returns" not in options and generators.is_generator(function):
            self._options["num_returns"] = "streaming"  # Ray's default for a generator
        functools.update_wrapper(self, function)
        self._check_call = CallCheck.of_function(function, getattr(function, "__qualname__", "task"))
        self._templates = SpecTemplates()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"remote function {self._function.__name__} cannot be called directly; "
            f"use {self._function.__name__}.remote(...)"
        )

    def options(self, **options: Any) -> "_BoundOptions":
        validate_task_options(options)
        return _BoundOptions(self, {**self._options, **options})

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> "FunctionNode":
        """A node of a task graph calling this function (ember.dag)."""
        return _bind(self, args, kwargs, self._options)

    def _remote(self, args: tuple[Any, ...], kwargs: dict[str, Any], opts: dict[str, Any],
                templates: "SpecTemplates | None" = None) -> Any:
        self._check_call(args, kwargs)
        submission = tracing.spans.start_submit(opts["name"] or self._check_call.name) if tracing.enabled else None
        client = runtime.client()
        function_id = self._export(client)
        encoded, deps, nested, keep = task_args.pack(client, args, kwargs, self._check_call.name)
        task_id = ids.new_task_id()
        ctx = runtime.task_context()
        if templates is None:  # (a graph node's own options: no template kept for them)
            templates = self._templates if opts is self._options else SpecTemplates()
        spec = raylet_pb2.TaskSpec()
        spec.CopyFrom(templates.get(function_id, opts, self._function))
        spec.task_id = task_id
        spec.job_id = runtime.current_job_id()
        spec.args = encoded
        spec.dependencies.extend(deps)
        spec.nested_refs.extend(nested)
        spec.parent_task_id = ctx.task_id or b""
        if not (SpecTemplates.default_placed(opts) and resolve_strategy(opts) is None):
            spec.ClearField("resources")
            spec.ClearField("label_selector")
            place(spec, resource_request(opts), opts)
        generator, n = spec.generator, spec.num_returns
        if generator == raylet_pb2.TaskSpec.STREAMING:
            client.open_stream(task_id)
        if submission is not None:
            submission.stamp(spec)
        client.submit(spec)
        if submission is not None:
            submission.end()
        del keep  # the submission now pins them
        refs = [ObjectRef(ids.object_id_for(task_id, i + 1), client) for i in range(n)]
        if generator == raylet_pb2.TaskSpec.STREAMING:
            return generators.ObjectRefGenerator(task_id, refs[0], client)
        if n == 1:
            return refs[0]
        return refs if n else None


def runtime_env_text(opts: dict[str, Any], what: str) -> str:
    """The TaskSpec.runtime_env for these options: their runtime_env over the parent's."""
    return runtime_env_support.task_env_text(runtime_env_support.validate(opts.get("runtime_env"), what),
                                             runtime.resolve_env)


class SpecTemplates:
    """What every call with one set of options shares, made once: a TaskSpec
    with the function, name, returns, retries and (placed by default, the
    common case) resources and label selector, copied into each call's spec.
    Rebuilt if the function is exported under another id (a new client)."""

    def __init__(self) -> None:
        self._spec: raylet_pb2.TaskSpec | None = None

    # Not shipped with a pickled remote function: a template holds the
    # runtime_env of the process that made it (a task's children inherit
    # their worker's, not the driver's).
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, _state: dict[str, Any]) -> None:
        self._spec = None

    def get(self, function_id: bytes, opts: dict[str, Any], function: Any) -> raylet_pb2.TaskSpec:
        spec = self._spec
        if spec is None or spec.function_id != function_id:
            n, generator = generators.spec_returns(opts["num_returns"])
            spec = raylet_pb2.TaskSpec(
                function_id=function_id, function_name=opts["name"] or getattr(function, "__qualname__", "task"),
                num_returns=n, generator=generator, max_retries=opts["max_retries"],
                retry_exceptions=bool(opts["retry_exceptions"]),
                runtime_env=runtime_env_text(opts, "a remote function"))
            if self.default_placed(opts):
                spec.resources.amounts.update(resource_request(opts))
                if opts.get("label_selector"):
                    spec.label_selector.update(opts["label_selector"])
            self._spec = spec
        return spec

    @staticmethod
    def default_placed(opts: dict[str, Any]) -> bool:
        """Whether the options name no strategy or placement group: then a
        call is placed by its resources alone, unless its parent's placement
        group captures it (resolve_strategy tells, per call)."""
        return opts.get("scheduling_strategy") is None and opts.get("placement_group", "default") in ("default", None)


class _BoundOptions:
    def __init__(self, fn: RemoteFunction, options: dict[str, Any]) -> None:
        self._fn = fn
        self._options = options
        self._templates = SpecTemplates()

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn._remote(args, kwargs, self._options, self._templates)

    def bind(self, *args: Any, **kwargs: Any) -> "FunctionNode":
        return _bind(self._fn, args, kwargs, self._options)


def _bind(fn: RemoteFunction, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> "FunctionNode":
    from ember.dag.function_node import FunctionNode  # loaded when a graph is built, not by `import ember`

    return FunctionNode(fn, args, kwargs, dict(options))


def remote(*args: Any, **options: Any) -> Any:
    """@ember.remote, bare or with options, on a function or a class."""
    if len(args) == 1 and not options and callable(args[0]):
        return _make(args[0], {})
    if args:
        raise TypeError("@ember.remote takes either a function or keyword options only")

    def decorator(target: Any) -> Any:
        return _make(target, options)

    return decorator


def _make(target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, type):
        from ember._private.actor import ActorClass  # actor builds on this module

        return ActorClass(target, options)
    if not callable(target):
        raise TypeError(f"@ember.remote needs a function, got {type(target).__name__}")
    return RemoteFunction(target, options)
