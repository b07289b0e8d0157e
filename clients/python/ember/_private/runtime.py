"""The process-wide runtime behind the public API: the connection to the
cluster (a CoreClient), the private local cluster `init()` may start, and
the calls `get`, `put`, `wait`, `cancel`, `nodes`, ..."""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import pathlib
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Sequence

from ember.v1 import gcs_pb2, raylet_pb2

from ember import exceptions
from ember_common import job_settings as job_settings_kv
from ember._private import serialization, session, tracing
from ember._private.core_client import CoreClient
from ember._private.generators import ObjectRefGenerator
from ember_common.job_settings import JobSettings, validate_namespace
from ember._private.object_ref import ObjectRef
from ember._private import runtime_env_support
from ember_common.runtime_env_spec import ResolvedEnv
from ember_common import auth, ids, placement, tls
from ember_common.config import Config

if TYPE_CHECKING:
    from ember._private.node_launcher import NodeProcesses
    from ember.job_config import JobConfig

log = logging.getLogger(__name__)


class _State:
    def __init__(self) -> None:
        self.client: CoreClient | None = None
        self.local_node: NodeProcesses | None = None
        self.session_dir: pathlib.Path | None = None
        self.dashboard_url: str | None = None  # of the private cluster's web UI, if init() started one
        self.job_id: bytes = b""
        # Job id -> its settings: the driver's own; in a worker, each job met.
        self.job_settings: dict[bytes, JobSettings] = {}
        self.is_worker = False
        # The job's runtime_env (the submitted job's, with init's over it),
        # and what resolves (uploads) environments for this client.
        self.job_env = ResolvedEnv()
        self.resolver: runtime_env_support.Resolver | None = None
        self.lock = threading.RLock()


_state = _State()


class TaskContext:
    """What the running task is (workers); empty in a driver."""

    def __init__(self) -> None:
        self.task_id: bytes | None = None
        self.job_id: bytes | None = None
        self.task_name: str | None = None
        self.actor_id: bytes | None = None
        self.actor_handle: Any = None  # the current actor's own handle
        # The spec of what holds the resources: the task's, or in an actor its
        # creation spec. What follows from it is read when asked (few tasks ask).
        self.holder: raylet_pb2.TaskSpec | None = None
        self.started_at = 0.0  # unix time.time() when the task was taken up (TaskResult.start_time, run_time_s)

    @property
    def _creation(self) -> raylet_pb2.ActorCreation | None:
        holder = self.holder
        return holder.actor_creation if holder is not None and holder.HasField("actor_creation") else None

    @property
    def actor_name(self) -> str | None:
        """"" for an unnamed actor (as Ray); None outside an actor."""
        creation = self._creation
        return creation.name if creation is not None else None

    @property
    def is_async_actor(self) -> bool:
        creation = self._creation
        return creation is not None and creation.is_async

    @property
    def actor_restarts(self) -> int:
        creation = self._creation
        return creation.num_restarts if creation is not None else 0

    @property
    def resources(self) -> dict[str, float]:
        """What the task (or, in an actor, the actor) holds, as it asked for it."""
        return placement.base_request(self.holder.resources.amounts) if self.holder is not None else {}

    @property
    def placement_group_id(self) -> bytes | None:
        group = placement.group_of(self.holder.resources.amounts) if self.holder is not None else None
        return bytes.fromhex(group) if group else None

    @property
    def capture_child_tasks(self) -> bool:
        """Whether its children go into its placement group."""
        return self.holder is not None and self.holder.placement_group_capture_child_tasks


_thread_contexts = threading.local()
# The calls of an async actor interleave on one thread: each asyncio task
# sets its own context here (a task's contextvars are its own copy).
coroutine_context: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "ember_task_context", default=None)


def task_context() -> TaskContext:
    """The running task's context: the calling coroutine's in an async actor,
    else the calling thread's."""
    ctx = coroutine_context.get()
    if ctx is None:
        ctx = getattr(_thread_contexts, "value", None)
        if ctx is None:
            ctx = _thread_contexts.value = TaskContext()
    return ctx


# The running tasks of this worker that a cancel reached (is_canceled()).
cancelled_tasks: set[bytes] = set()


def current_job_id() -> bytes:
    """The job of the running task, else this driver's job."""
    return task_context().job_id or _state.job_id


def current_namespace() -> str:
    """The namespace of the running task's job, else this driver's."""
    return job_settings(current_job_id()).namespace


def current_client_or_none() -> CoreClient | None:
    return _state.client


def client() -> CoreClient:
    c = _state.client
    if c is None:
        init()
        c = _state.client
    assert c is not None
    return c


def is_initialized() -> bool:
    return _state.client is not None


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict[str, float] | None = None,
    namespace: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    job_config: JobConfig | None = None,
    object_store_memory: int | None = None,
    ignore_reinit_error: bool = False,
    log_to_driver: bool = True,
    include_dashboard: bool | None = None,
    dashboard_host: str | None = None,
    dashboard_port: int | None = None,
    _token: str | None = None,
    **unsupported: Any,
) -> dict[str, Any]:
    """Connect this process to a cluster, starting a private one if needed.

    address: None starts a private local cluster (stopped at shutdown or
    exit) unless EMBER_ADDRESS is set; "auto" joins the cluster started by
    `ember start` on this machine; "host:port" joins the GCS at that address.
    namespace (else job_config's, else ""), runtime_env and job_config
    (an ember.job_config.JobConfig) hold for every task and actor of the job.
    include_dashboard=True also starts the web UI with a private cluster (off
    by default: one more process per program), on dashboard_host:dashboard_port
    (default EMBER_DASHBOARD_HOST/PORT: 127.0.0.1:8265); its address is
    the answer's "dashboard_url".
    """
    if unsupported:
        warnings.warn(f"ember.init() ignores arguments it does not support: {sorted(unsupported)}", stacklevel=2)
    settings, metadata, job_env = _job_settings(namespace, runtime_env, job_config)
    with _state.lock:
        if _state.client is not None:
            if ignore_reinit_error:
                return _context_info()
            raise RuntimeError("ember.init() was already called; call ember.shutdown() first "
                               "or pass ignore_reinit_error=True")
        config = Config.load()
        address = address or os.environ.get("EMBER_ADDRESS") or None
        token = _token or os.environ.get(auth.TOKEN_ENV)
        if address is None:
            # (Imported here: workers import this module too, and never start a node.)
            from ember._private import node_launcher

            session_dir, token = session.create(config.session_root, token, session.StartedBy.DRIVER)
            tls_files = node_launcher.prepare_tls(session_dir, "127.0.0.1", enabled=config.tls)
            tls.activate(tls_files)
            node = node_launcher.start_node(
                session_dir, token, head=True, num_cpus=num_cpus, num_gpus=num_gpus or 0,
                resources=resources, object_store_bytes=object_store_memory, config=config, tls_files=tls_files,
            )
            _state.local_node = node
            _state.session_dir = session_dir
            if include_dashboard:
                try:
                    _state.dashboard_url = node_launcher.start_dashboard(
                        node, token, dashboard_host or config.dashboard_host,
                        dashboard_port if dashboard_port is not None else config.dashboard_port,
                        detached=False, tls_files=tls_files)
                except BaseException:
                    node.stop(timeout=2)
                    _state.local_node = None
                    raise
            gcs_address = node.gcs_address
            raylet_address = f"local:{node.raylet_local_socket}" if config.local_transport else f"unix:{node.raylet_socket}"
        else:
            if num_cpus is not None or num_gpus is not None or resources:
                raise ValueError("num_cpus/num_gpus/resources can only be given when starting a new "
                                 "local cluster (address=None); set them with `ember start`")
            gcs_address, token, session_dir = _resolve(address, token, config)
            _state.session_dir = session_dir
            raylet_address = _pick_raylet(gcs_address, token, config.local_transport)
        try:
            _connect(gcs_address, raylet_address, token, settings, metadata, config)
            assert _state.client is not None
            tracing.configure("ember-driver", {"ember.node_id": _state.client.node_id.hex()})
            _state.client.print_logs = log_to_driver
            _state.job_env = _resolve_job_env(job_env)
        except BaseException:
            if _state.client is not None:
                _state.client.close()
                _state.client = None
            if _state.local_node is not None:
                _state.local_node.stop()
                _state.local_node = None
            raise
        return _context_info()


def _resolve(address: str, token: str | None, config: Config) -> tuple[str, str, pathlib.Path | None]:
    """(GCS address, token, session directory) for `address`: "auto" is
    this machine's latest `ember start` cluster; for "host:port" the token
    is the one of the session on this machine serving that address (then of
    the latest), unless given or set in the environment. "auto" with
    EMBER_ADDRESS set is that address (as Ray's RAY_ADDRESS): how a
    submitted job's driver joins the cluster that runs it."""
    if address == "auto" and os.environ.get("EMBER_ADDRESS"):
        address = os.environ["EMBER_ADDRESS"]
    if address == "auto":
        session_dir = session.latest(config.session_root)
        if session_dir is None or not (session_dir / "cluster.json").exists():
            raise ConnectionError("no running cluster found (start one with `ember start --head`)")
        gcs_address = session.read_json(session_dir / "cluster.json")["gcs_address"]
    else:
        gcs_address = address.removeprefix("ember://")
        session_dir = (session.find_by_address(config.session_root, gcs_address)
                       or session.latest(config.session_root))
    if token is None:
        if session_dir is not None and (session_dir / "token").exists():
            token = auth.read_token(session_dir / "token")
        else:
            raise ConnectionError(f"no cluster token for {gcs_address}: set {auth.TOKEN_ENV}")
    # A TLS cluster's node files serve its drivers on the same machine too
    # (as its token does); files in the environment win.
    if session_dir is not None and tls.from_environment() is None:
        tls.activate(session.tls_files(session_dir))
    return gcs_address, token, session_dir


# A driver joining waits this long for a GCS (through a failover) before giving up.
_JOIN_WINDOW_S = 10.0


def _pick_raylet(gcs_address: str, token: str, local_transport: bool) -> str:
    """The raylet of this machine: one whose unix socket exists here."""
    import grpc  # drivers only: workers never load gRPC unless they need it

    from ember_common.gcs_client import GcsClient

    gcs = GcsClient(gcs_address, token, failover_window_s=_JOIN_WINDOW_S)
    try:
        reply = gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=10)
    except grpc.RpcError as e:
        raise ConnectionError(f"cannot reach the GCS at {gcs_address}: {e.code().name} {e.details()}") from None
    finally:
        gcs.close()
    alive = [n for n in reply.nodes if n.alive]
    for node in alive:
        if local_transport and node.raylet_local_socket and os.path.exists(node.raylet_local_socket):
            return f"local:{node.raylet_local_socket}"
        if node.raylet_socket and os.path.exists(node.raylet_socket):
            return f"unix:{node.raylet_socket}"
    if alive:
        raise ConnectionError("no node of the cluster runs on this machine; start one with "
                              f"`ember start --address={gcs_address}` first")
    raise ConnectionError(f"the cluster at {gcs_address} has no live nodes")


def _job_settings(namespace: str | None, runtime_env: dict[str, Any] | None,
                  job_config: JobConfig | None) -> tuple[JobSettings, dict[str, str], dict[str, Any] | None]:
    """The job's settings from init's arguments (checked before anything
    starts), and its metadata."""
    from ember.job_config import JobConfig

    if job_config is None:
        job_config = JobConfig()
    elif not isinstance(job_config, JobConfig):
        raise TypeError(f"job_config must be an ember.job_config.JobConfig, got {type(job_config).__name__}")
    if runtime_env is not None and job_config.runtime_env is not None:
        raise ValueError("runtime_env was given both to ember.init and in its job_config; give it once")
    job_env = runtime_env_support.validate(runtime_env if runtime_env is not None else job_config.runtime_env,
                                           "ember.init")
    if namespace is not None:
        validate_namespace(namespace)
    settings = JobSettings(
        namespace=namespace if namespace is not None else job_config.ray_namespace or "",
        code_search_path=tuple(os.path.abspath(p) for p in job_config.code_search_path),
        driver_sys_path=tuple(dict.fromkeys([os.getcwd(), *sys.path, *job_config._py_driver_sys_path])),
        default_actor_lifetime=job_config.default_actor_lifetime,
    )
    return settings, dict(job_config.metadata), job_env


def _resolve_job_env(job_env: dict[str, Any] | None) -> ResolvedEnv:
    """The job's environment: a submitted job's (from its job service),
    with the one given to init over it."""
    submitted = ResolvedEnv.from_json(os.environ.get(runtime_env_support.JOB_ENV_VAR, ""))
    if not job_env:
        return submitted
    return submitted.merged_under(resolve_env(job_env), set(job_env))


def resolve_env(env: dict[str, Any]) -> ResolvedEnv:
    """A validated runtime_env resolved (its packages uploaded once) through this process's client."""
    c = client()
    with _state.lock:
        if _state.resolver is None or _state.resolver.gcs is not c.gcs:
            _state.resolver = runtime_env_support.Resolver(c.gcs)
        resolver = _state.resolver
    return resolver.resolve(env)


def job_runtime_env() -> ResolvedEnv:
    return _state.job_env


def is_worker() -> bool:
    return _state.is_worker


def _connect(gcs_address: str, raylet_address: str, token: str, settings: JobSettings, metadata: dict[str, str],
             config: Config) -> None:
    from ember_common.gcs_client import GcsClient

    gcs = GcsClient(gcs_address, token, failover_window_s=_JOIN_WINDOW_S)
    try:
        # One request id for all retries: a failover between the GCS storing the
        # job and its reply reaching us must not make a second job.
        job = gcs.AddJob(gcs_pb2.AddJobRequest(driver_pid=os.getpid(), namespace=settings.namespace,
                                               entrypoint=" ".join(sys.argv)[:1024], request_id=ids.new_unique_id(),
                                               metadata=metadata),
                         timeout=30, wait_for_ready=True).job
        gcs.KvPut(gcs_pb2.KvPutRequest(namespace=job_settings_kv.KV_NAMESPACE, key=job_settings_kv.kv_key(job.job_id),
                                       value=settings.to_json(), overwrite=True),
                  timeout=30)
    finally:
        gcs.close()
    register = raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.DRIVER, job_id=job.job_id, pid=os.getpid())
    _state.client = CoreClient(raylet_address, token, register, config)
    _state.job_id = job.job_id
    _state.job_settings = {job.job_id: settings}


def job_settings(job_id: bytes) -> JobSettings:
    """The settings of job `job_id` (this driver's own; in a worker, read
    once per job from the GCS through the raylet)."""
    found = _state.job_settings.get(job_id)
    if found is not None:
        return found
    c = _state.client
    if not job_id or c is None:
        return JobSettings()
    present, raw = c.kv_get(job_settings_kv.KV_NAMESPACE, job_settings_kv.kv_key(job_id), timeout=30)
    settings = JobSettings.from_json(raw) if present else JobSettings()
    _state.job_settings[job_id] = settings
    return settings


def connect_worker(client_: CoreClient) -> None:
    _state.client = client_
    _state.is_worker = True


def _context_info() -> dict[str, Any]:
    c = _state.client
    return {
        "session_dir": str(_state.session_dir) if _state.session_dir else None,
        "node_id": c.node_id.hex() if c else None,
        "job_id": _state.job_id.hex(),
        "gcs_address": c.info.gcs_address if c else None,
        "dashboard_url": _state.dashboard_url,
    }


def shutdown() -> None:
    """Disconnect; stop the private local cluster if init() started one."""
    with _state.lock:
        c, _state.client = _state.client, None
        if c is not None:
            if tracing.enabled:
                tracing.disable()  # (the next init decides anew)
            if _state.job_id:  # drivers
                import grpc

                try:  # best effort: a GCS that is gone must not hold up the exit
                    c.gcs.FinishJob(gcs_pb2.FinishJobRequest(job_id=_state.job_id), timeout=2, failover_window_s=0)
                except grpc.RpcError:
                    pass
            c.close()
        node, _state.local_node = _state.local_node, None
        _state.dashboard_url = None
        if node is not None:
            node.stop()
            if _state.session_dir is not None:
                _clean_session_dir(_state.session_dir)
        _state.job_id = b""
        _state.job_settings = {}
        _state.job_env = ResolvedEnv()
        _state.session_dir = None
        tls.activate(None)


def _clean_session_dir(path: pathlib.Path) -> None:
    # Keep the logs; remove what would mislead (token, sockets, ready files).
    for name in ("token",):
        (path / name).unlink(missing_ok=True)
    for pattern in ("*.sock", "*.ready"):
        for p in path.glob(pattern):
            p.unlink(missing_ok=True)


atexit.register(shutdown)


# ---- objects -------------------------------------------------------------


def put(value: Any) -> ObjectRef:
    if isinstance(value, ObjectRef):
        raise TypeError("put() takes a value, not an ObjectRef (pass the ref itself instead)")
    c = client()
    object_id = ids.new_put_id()
    span = tracing.spans.start_object_span("put", 1) if tracing.enabled else None
    try:
        so = serialization.serialize(value)
        c.put_value(c.encode(object_id, so))
    finally:
        if span is not None:
            span.end()
    return ObjectRef(object_id, c)


def get(refs: Any, *, timeout: float | None = None) -> Any:
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
    c = client()
    if isinstance(refs, ObjectRef):
        refs = [refs]
        one = True
    elif isinstance(refs, (list, tuple)):
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(f"get() takes ObjectRefs or a list of them, got a {type(r).__name__} in the list")
        refs = list(refs)
        one = False
    else:
        raise TypeError(f"get() takes an ObjectRef or a list of them, got {type(refs).__name__}")
    span = tracing.spans.start_object_span("get", len(refs)) if tracing.enabled else None
    try:
        values = _get_list(c, refs, timeout)
    finally:
        if span is not None:
            span.end()
    return values[0] if one else values


def _get_list(c: CoreClient, refs: list[ObjectRef], timeout: float | None) -> list[Any]:
    object_ids = [r.binary() for r in refs]
    unique = list(dict.fromkeys(object_ids))
    ready = c.wait_values(unique, len(unique), timeout)
    if len(ready) < len(unique):
        missing = len(unique) - len(ready)
        raise exceptions.GetTimeoutError(f"get timed out after {timeout}s: {missing} of {len(unique)} objects not ready")
    return c.decode_many([c.get_value(oid) for oid in object_ids])


def wait(refs: Sequence[ObjectRef], *, num_returns: int = 1, timeout: float | None = None,
         fetch_local: bool = True) -> tuple[list[ObjectRef], list[ObjectRef]]:
    if isinstance(refs, ObjectRef) or not isinstance(refs, (list, tuple)):
        raise TypeError("wait() takes a list of ObjectRefs")
    try:
        object_ids = [r._id for r in refs]  # (a generator has no _id: the common case pays no isinstance per ref)
    except AttributeError:
        if any(isinstance(r, ObjectRefGenerator) for r in refs):
            return _wait_with_generators(refs, num_returns, timeout, fetch_local)
        bad = next(r for r in refs if not isinstance(r, ObjectRef))
        raise TypeError(f"wait() takes a list of ObjectRefs, got a {type(bad).__name__} in the list") from None
    _check_wait_bounds(len(refs), num_returns, timeout)
    c = client()
    # A look without blocking first: when every ref is ready (the ready
    # set as large as the list), there are no duplicates either, and the
    # check for them (a set of its own) is not paid.
    ready_ids = c.wait_values(object_ids, num_returns, 0, fetch_local, report_blocked=False)
    if len(ready_ids) != len(object_ids) and len(set(object_ids)) != len(object_ids):
        raise ValueError("wait() got duplicate ObjectRefs")
    if len(ready_ids) < num_returns and timeout != 0:
        ready_ids = c.wait_values(object_ids, num_returns, timeout, fetch_local)
    if len(ready_ids) == len(refs) and num_returns == len(refs):
        return list(refs), []
    ready: list[ObjectRef] = []
    not_ready: list[ObjectRef] = []
    for r in refs:
        (ready if r._id in ready_ids and len(ready) < num_returns else not_ready).append(r)
    return ready, not_ready


def _check_wait_bounds(count: int, num_returns: int, timeout: float | None) -> None:
    if not 0 <= num_returns <= count:
        raise ValueError(f"num_returns must be between 0 and {count}, got {num_returns}")
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be >= 0 or None")


def _wait_with_generators(refs: Sequence[Any], num_returns: int, timeout: float | None,
                          fetch_local: bool) -> tuple[list[Any], list[Any]]:
    """wait() on refs and streaming generators (ready: next() would not
    block), in the order given."""
    if not all(isinstance(r, (ObjectRef, ObjectRefGenerator)) for r in refs):
        bad = next(r for r in refs if not isinstance(r, (ObjectRef, ObjectRefGenerator)))
        raise TypeError(f"wait() takes a list of ObjectRefs, got a {type(bad).__name__} in the list")
    if len({id(r) for r in refs}) != len(refs):
        raise ValueError("wait() got duplicate ObjectRefs")
    _check_wait_bounds(len(refs), num_returns, timeout)
    c = client()
    deadline = None if timeout is None else time.monotonic() + timeout
    ready_at: set[int] = set()
    while True:
        for i, r in enumerate(refs):
            if i not in ready_at and isinstance(r, ObjectRefGenerator) and r.next_ready():
                ready_at.add(i)
        remaining = None if deadline is None else deadline - time.monotonic()
        if len(ready_at) >= num_returns or (remaining is not None and remaining <= 0):
            break
        groups = [(i, r._wait_ids() if isinstance(r, ObjectRefGenerator) else [r._id])
                  for i, r in enumerate(refs) if i not in ready_at]
        got = c.wait_values([object_id for _, group in groups for object_id in group], 1, remaining, fetch_local)
        ready_at.update(i for i, group in groups if isinstance(refs[i], ObjectRef) and group[0] in got)
    ready = [r for i, r in enumerate(refs) if i in ready_at][:num_returns]
    chosen = {id(r) for r in ready}
    return ready, [r for r in refs if id(r) not in chosen]


def cancel(ref: ObjectRef | ObjectRefGenerator, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task behind `ref`. A running task is interrupted
    (TaskCancelledError in it; force=True kills its worker); a running actor
    call is flagged (`get_runtime_context().is_canceled()`), or, in an async
    actor, its asyncio task cancelled. Either way `get` raises
    TaskCancelledError, unless a task (not an actor call) caught it and returned."""
    if not isinstance(ref, (ObjectRef, ObjectRefGenerator)):
        raise TypeError(f"cancel() takes an ObjectRef, got {type(ref).__name__}")
    task_id = ref.task_id()
    if force and ids.is_actor_call(task_id):
        raise ValueError("force=True is not supported for actor tasks; use ember.kill(actor) to end the actor")
    client().cancel(task_id, force, recursive)


# ---- cluster views ---------------------------------------------------------


def _nodes_proto() -> list[gcs_pb2.NodeInfo]:
    return list(client().gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=30).nodes)


def nodes() -> list[dict[str, Any]]:
    out = []
    for n in _nodes_proto():
        out.append({
            "NodeID": n.node_id.hex(),
            "Alive": n.alive,
            "NodeManagerAddress": n.node_address,
            "NodeManagerPort": n.raylet_port,
            "ObjectManagerPort": n.object_transfer_port,  # (Ray's name: where other nodes pull objects from)
            "ObjectStoreSocketName": n.object_store_socket,
            "RayletSocketName": n.raylet_socket,
            "Resources": dict(n.total.amounts) if n.alive else {},
            "Labels": dict(n.labels),
            "IsHead": n.is_head,
            "DeathReason": n.death_reason,
        })
    return out


def _sum(resource_sets: list[Any]) -> dict[str, float]:
    total: dict[str, float] = {}
    for rs in resource_sets:
        for k, v in rs.amounts.items():
            total[k] = total.get(k, 0.0) + v
    return {k: v for k, v in total.items() if v > 0}


def cluster_resources() -> dict[str, float]:
    return _sum([n.total for n in _nodes_proto() if n.alive])


def available_resources() -> dict[str, float]:
    return _sum([n.available for n in _nodes_proto() if n.alive])
