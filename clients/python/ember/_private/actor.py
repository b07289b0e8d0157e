"""@ember.remote on a class: ActorClass, ActorHandle, ActorMethod, and the
actor calls of the public API (kill, get_actor, method, exit_actor)."""

from __future__ import annotations

import inspect
import pickle
from typing import TYPE_CHECKING, Any, Callable

from ember.v1 import gcs_pb2, raylet_pb2

from ember._private import generators, runtime, task_args, tracing
from ember._private.call_check import CallCheck
from ember._private.object_ref import ObjectRef
from ember._private.remote_function import (PLACEMENT_GROUP_OPTIONS, Exported, place, resource_request,
                                            runtime_env_text, validate_options)
from ember_common import ids

if TYPE_CHECKING:
    from ember.dag.class_node import ClassMethodNode, ClassNode

# Options an actor accepts, with Ray's defaults. num_cpus=None means Ray's
# default: 1 CPU to place it, none held while it lives.
ACTOR_DEFAULTS: dict[str, Any] = {
    "num_cpus": None,
    "num_gpus": 0,
    "memory": 0,
    "object_store_memory": None,
    "resources": None,
    "max_concurrency": None,  # 1; 1000 for async actors
    "max_restarts": 0,
    "max_task_retries": 0,
    "name": None,
    "namespace": None,
    "lifetime": None,  # or "detached"
    "get_if_exists": False,
    "concurrency_groups": None,  # accepted; calls share max_concurrency
    "scheduling_strategy": None,
    "label_selector": None,
    "runtime_env": None,
    **PLACEMENT_GROUP_OPTIONS,
}
METHOD_DEFAULTS: dict[str, Any] = {"num_returns": 1, "name": None,
                                   "concurrency_group": None}  # accepted; calls share max_concurrency
# The method every actor has (Ray's): its call's value is True once the
# actor was created; ActorDiedError if its creation failed.
READY_METHOD = "__ray_ready__"


def method(*args: Any, **options: Any) -> Any:
    """@ember.method(num_returns=...) on an actor method."""
    if args:
        raise TypeError("use @ember.method(num_returns=N)")
    validate_options(options, METHOD_DEFAULTS, "an actor method")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__ember_method_options__ = options  # type: ignore[attr-defined]
        return fn

    return decorator


def _validate_actor_options(options: dict[str, Any]) -> None:
    validate_options(options, ACTOR_DEFAULTS, "an actor")
    for key in ("max_restarts", "max_task_retries"):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or value < -1):
            raise ValueError(f"{key} must be an int >= -1, got {value!r}")
    concurrency = options.get("max_concurrency")
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise ValueError(f"max_concurrency must be an int >= 1, got {concurrency!r}")
    lifetime = options.get("lifetime")
    if lifetime not in (None, "detached", "non_detached"):
        raise ValueError(f"lifetime must be 'detached', 'non_detached' or None, got {lifetime!r}")
    name = options.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"an actor name must be a non-empty string, got {name!r}")


class _ClassInfo:
    """What a handle needs to know about its class (pickled into handles)."""

    def __init__(self, cls: type) -> None:
        self.class_name = cls.__qualname__
        self.methods: dict[str, dict[str, Any]] = {}
        # Each method's argument check, and the constructor's ("__init__").
        self.checks = {"__init__": CallCheck.of_method(cls, "__init__", cls.__qualname__),
                       READY_METHOD: CallCheck(f"{cls.__qualname__}.{READY_METHOD}", ())}
        # An async __init__ makes an async actor too (it runs on the actor's loop).
        self.is_async = inspect.iscoroutinefunction(getattr(cls, "__init__", None))
        for name, member in inspect.getmembers(cls, predicate=inspect.isfunction):
            if name.startswith("__") and name != "__call__":
                continue
            self.methods[name] = {**METHOD_DEFAULTS, **getattr(member, "__ember_method_options__", {})}
            self.checks[name] = CallCheck.of_method(cls, name, f"{self.class_name}.{name}")
            if generators.is_generator(member) and "num_returns" not in getattr(member, "__ember_method_options__", {}):
                self.methods[name]["num_returns"] = "streaming"  # Ray's default for a generator
            if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member):
                self.is_async = True


class ActorClass(Exported):
    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        _validate_actor_options(options)
        self._cls = self._exported_target = cls
        self._options = {**ACTOR_DEFAULTS, **options}
        self._info = _ClassInfo(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor class {self._cls.__name__} cannot be instantiated directly; "
                        f"use {self._cls.__name__}.remote(...)")

    def options(self, **options: Any) -> "_BoundActorOptions":
        _validate_actor_options(options)
        return _BoundActorOptions(self, {**self._options, **options})

    def remote(self, *args: Any, **kwargs: Any) -> "ActorHandle":
        return self._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> "ClassNode":
        """A node of a task graph creating this actor (ember.dag)."""
        return _bind_class(self, args, kwargs, self._options)

    def _remote(self, args: tuple[Any, ...], kwargs: dict[str, Any], opts: dict[str, Any]) -> "ActorHandle":
        check = self._info.checks["__init__"]
        check(args, kwargs)
        client = runtime.client()
        function_id = self._export(client)
        env_text = runtime_env_text(opts, "an actor")  # (before the name is taken: it may fail)
        info = self._info
        name = opts["name"]
        namespace = opts["namespace"] if opts["namespace"] is not None else runtime.current_namespace()
        lifetime = opts["lifetime"] or runtime.job_settings(runtime.current_job_id()).default_actor_lifetime.value
        detached = lifetime == "detached"
        concurrency = opts["max_concurrency"] or (1000 if info.is_async else 1)
        actor_id = ids.new_unique_id()
        task_id = ids.new_task_id()
        handle = ActorHandle(actor_id, function_id, info, opts["max_task_retries"],
                             ObjectRef(ids.object_id_for(task_id, 1), None))
        if name is not None:
            existing = _register_named(client, actor_id, name, namespace, detached, opts, handle)
            if existing is not None:
                if opts["get_if_exists"]:
                    return existing
                raise ValueError(f"an actor named {name!r} already exists in namespace {namespace!r}; "
                                 "use get_if_exists=True or ember.get_actor to reach it")
        submission = tracing.spans.start_submit(f"{info.class_name}.__init__") if tracing.enabled else None
        encoded, deps, nested, keep = task_args.pack(client, args, kwargs, check.name)
        ctx = runtime.task_context()
        spec = raylet_pb2.TaskSpec(
            task_id=task_id, job_id=runtime.current_job_id(), function_id=function_id,
            function_name=f"{info.class_name}.__init__", args=encoded, dependencies=deps, nested_refs=nested,
            num_returns=1, max_retries=0, parent_task_id=ctx.task_id or b"", actor_id=actor_id,
            runtime_env=env_text,
        )
        spec.actor_creation.CopyFrom(raylet_pb2.ActorCreation(
            actor_id=actor_id, class_name=info.class_name, max_restarts=opts["max_restarts"],
            max_task_retries=opts["max_task_retries"], max_concurrency=concurrency, is_async=info.is_async,
            detached=detached, name=name or "", namespace=namespace, scoped=name is None and not detached,
        ))
        shape_opts = dict(opts)
        shape_opts["num_cpus"] = opts["num_cpus"] or 0  # Ray: an actor holds no CPU unless it asks
        place(spec, resource_request(shape_opts), opts)
        if submission is not None:
            submission.stamp(spec)
        client.submit(spec)
        if submission is not None:
            submission.end()
        del keep
        # The handle counts as a reference to the actor's ready object: an
        # unnamed actor ends when no handle is left (after its pending calls).
        handle._ready = ObjectRef(handle._ready.binary(), client)
        return handle


def _register_named(client: Any, actor_id: bytes, name: str, namespace: str, detached: bool, opts: dict[str, Any],
                    handle: "ActorHandle") -> "ActorHandle | None":
    """Reserve the name in the GCS; the existing actor's handle if taken."""
    info = gcs_pb2.ActorInfo(
        actor_id=actor_id, job_id=runtime.current_job_id(), class_name=handle._info.class_name, name=name,
        namespace=namespace, max_restarts=opts["max_restarts"], detached=detached, handle=handle._describe(),
        # The raylet the creation goes through restarts the actor if its node
        # dies: the GCS then keeps it RESTARTING, not DEAD (gcs actor_table.node_died).
        owner_node_id=client.node_id,
    )
    reply = client.gcs.RegisterActor(gcs_pb2.RegisterActorRequest(actor=info), timeout=30,
                                     metadata=tracing.rpc_metadata())  # (the GCS's span: a child of ours)
    if reply.registered:
        return None
    return handle_from_info(reply.existing)


def handle_from_info(info: gcs_pb2.ActorInfo) -> "ActorHandle":
    client = runtime.client()
    if info.import_name:  # created by name, by a client in another language
        return ActorHandle(info.actor_id, b"", _class_info_by_name(info.import_name), 0,
                           ObjectRef(info.ready_object_id, client))
    actor_id, function_id, class_info, max_task_retries, ready_id = pickle.loads(info.handle)
    return ActorHandle(actor_id, function_id, class_info, max_task_retries, ObjectRef(ready_id, client))


def _class_info_by_name(import_name: str) -> "_ClassInfo":
    """The class's methods and their checks if this process can import it;
    else a description that lets any method be called (the worker, which
    imported it, is the judge)."""
    from ember._private import code_by_name

    try:
        return _ClassInfo(code_by_name.load(import_name))
    except (ImportError, ValueError):
        return _AnyClassInfo(import_name)


class _AnyMethods(dict):
    def get(self, name: str, default: Any = None) -> dict[str, Any]:  # type: ignore[override]
        return super().get(name) or METHOD_DEFAULTS


class _AnyChecks(dict):
    def __missing__(self, name: str) -> CallCheck:
        return CallCheck(name, None)  # unknown signature: nothing checked here


class _AnyClassInfo(_ClassInfo):
    """A class this process cannot import, known by name only."""

    def __init__(self, import_name: str) -> None:  # (not _ClassInfo's: there is no class here)
        self.class_name = import_name
        self.methods = _AnyMethods()
        self.checks = _AnyChecks({READY_METHOD: CallCheck(f"{import_name}.{READY_METHOD}", ())})
        self.is_async = False


class _BoundActorOptions:
    def __init__(self, cls: ActorClass, options: dict[str, Any]) -> None:
        self._cls = cls
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> "ActorHandle":
        return self._cls._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> "ClassNode":
        return _bind_class(self._cls, args, kwargs, self._options)


def _bind_class(cls: ActorClass, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> "ClassNode":
    from ember.dag.class_node import ClassNode  # loaded when a graph is built, not by `import ember`

    return ClassNode(cls, args, kwargs, dict(options))


class ActorHandle:
    """A reference to an actor: call its methods with `.method.remote(...)`.
    Handles can be passed to tasks and other actors."""

    def __init__(self, actor_id: bytes, function_id: bytes, info: _ClassInfo, max_task_retries: int,
                 ready: ObjectRef) -> None:
        self._actor_id = actor_id
        self._function_id = function_id
        self._info = info
        self._max_task_retries = max_task_retries
        self._ready = ready

    def __getattr__(self, name: str) -> "ActorMethod":
        if name == READY_METHOD:
            return ActorMethod(self, name, METHOD_DEFAULTS)
        if name.startswith("_"):
            raise AttributeError(name)
        options = self._info.methods.get(name)
        if options is None:
            raise AttributeError(f"actor class {self._info.class_name} has no method {name!r}")
        return ActorMethod(self, name, options)

    def __repr__(self) -> str:
        return f"Actor({self._info.class_name}, {self._actor_id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def _describe(self) -> bytes:
        return pickle.dumps((self._actor_id, self._function_id, self._info, self._max_task_retries,
                             self._ready.binary()))

    def __reduce__(self) -> Any:
        # The ready ref travels as a ref, so a handle inside a task's
        # arguments or an object keeps the actor in scope.
        return _rebuild_handle, (self._actor_id, self._function_id, self._info, self._max_task_retries, self._ready)


def own_handle(cls: type, spec: raylet_pb2.TaskSpec) -> ActorHandle:
    """The handle an actor's own code gets (get_runtime_context().current_actor).
    Its ready ref is not counted: it must not keep its own actor in scope."""
    creation = spec.actor_creation
    return ActorHandle(creation.actor_id, spec.function_id, _ClassInfo(cls), creation.max_task_retries,
                       ObjectRef(ids.object_id_for(spec.task_id, 1)))


def _rebuild_handle(actor_id: bytes, function_id: bytes, info: _ClassInfo, max_task_retries: int,
                    ready: ObjectRef) -> ActorHandle:
    return ActorHandle(actor_id, function_id, info, max_task_retries, ready)


class ActorMethod:
    def __init__(self, handle: ActorHandle, name: str, options: dict[str, Any]) -> None:
        self._handle = handle
        self._name = name
        self._options = options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor method {self._name} cannot be called directly; use .{self._name}.remote(...)")

    def options(self, **options: Any) -> "ActorMethod":
        validate_options(options, METHOD_DEFAULTS, "an actor method")
        return ActorMethod(self._handle, self._name, {**self._options, **options})

    def bind(self, *args: Any, **kwargs: Any) -> "ClassMethodNode | tuple[ClassMethodNode, ...]":
        """A node of a task graph calling this method (ember.dag); the
        arguments are checked now, as Ray checks a handle's."""
        self._handle._info.checks[self._name](args, kwargs)
        from ember.dag.class_node import bind_handle_method  # loaded when a graph is built

        return bind_handle_method(self._handle, self._name, self._options, args, kwargs)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        handle = self._handle
        check = handle._info.checks[self._name]
        check(args, kwargs)
        submission = tracing.spans.start_submit(check.name) if tracing.enabled else None
        client = runtime.client()
        encoded, deps, nested, keep = task_args.pack(client, args, kwargs, check.name)
        task_id = ids.new_task_id(actor_call=True)
        n, generator = generators.spec_returns(self._options["num_returns"])
        spec = raylet_pb2.TaskSpec(
            task_id=task_id, job_id=runtime.current_job_id(), function_id=handle._function_id,
            function_name=self._options["name"] or f"{handle._info.class_name}.{self._name}",
            args=encoded, dependencies=deps, nested_refs=nested, num_returns=n, generator=generator,
            max_retries=handle._max_task_retries, parent_task_id=runtime.task_context().task_id or b"",
            actor_id=handle._actor_id, method_name=self._name,
        )
        if generator == raylet_pb2.TaskSpec.STREAMING:
            client.open_stream(task_id)
        # The handle's ready ref rides with a direct call: the actor stays in
        # scope until its result is in, as it does for calls the raylet sees.
        # (A generator's values go through the raylet, which holds them.)
        direct = n == 1 and not deps and not nested and not generator
        if submission is not None:
            submission.stamp(spec)
        first = client.submit_actor_call(spec, handle._ready, direct=direct)
        if submission is not None:
            submission.end()
        del keep
        refs = [first, *(ObjectRef(ids.object_id_for(task_id, i + 1), client) for i in range(1, n))] if n else []
        if generator == raylet_pb2.TaskSpec.STREAMING:
            return generators.ObjectRefGenerator(task_id, refs[0], client)
        if n == 1:
            return refs[0]
        return refs if n else None


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """End an actor at once: its running and pending calls fail with
    ActorDiedError. With no_restart=False it restarts if it may."""
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"ember.kill takes an actor handle, got {type(actor).__name__}")
    runtime.client().kill_actor(actor._actor_id, no_restart)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of the live actor called `name` (in `namespace`, default
    this job's)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an actor name must be a non-empty string, got {name!r}")
    client = runtime.client()
    ns = namespace if namespace is not None else runtime.current_namespace()
    reply = client.gcs.GetActor(gcs_pb2.GetActorRequest(name=name, namespace=ns), timeout=30)
    if not reply.found:
        raise ValueError(f"no live actor named {name!r} in namespace {ns!r}")
    return handle_from_info(reply.actor)


class ActorExit(BaseException):
    """Raised by exit_actor(); a BaseException so user code's `except
    Exception` does not swallow it."""


def exit_actor() -> None:
    """End the current actor for good, from one of its methods. The call
    that exits fails with ActorDiedError; the actor is not restarted."""
    if runtime.task_context().actor_id is None:
        raise TypeError("exit_actor() can only be called from inside an actor method")
    raise ActorExit()
