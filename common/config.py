"""Settings: flags > EMBER_* environment > config file > defaults.

One place for every tunable. Services and the SDK read `Config.load()`; CLI
flags override individual fields on top of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

DEFAULT_GCS_PORT = 6380
DEFAULT_SESSION_ROOT = "/tmp/ember-sessions"


@dataclasses.dataclass
class Config:
    # Encoded objects smaller than this travel inside messages and live in the
    # owner's memory; larger ones go to the node's shared-memory store.
    inline_threshold: int = 100 * 1024
    # Object store capacity as a fraction of RAM when not given in bytes.
    object_store_fraction: float = 0.3
    object_store_bytes: int = 0
    # Where a full object store spills objects (default: the session directory).
    object_spilling_directory: str = ""
    # No spilling that would fill that file system past this fraction: a
    # put then fails with ObjectStoreFullError (Ray's local_fs_capacity_threshold).
    local_fs_capacity_threshold: float = 0.95
    # GCS marks a node dead after this long without a resource report.
    health_timeout_s: float = 10.0
    report_interval_s: float = 0.5
    # Queued tasks pushed to one worker ahead of time (pipelining).
    max_tasks_in_flight_per_worker: int = 10
    # Workers the raylet may start beyond num_cpus, and how long such a worker
    # may sit idle before it is retired. Few are needed: tasks that a task
    # blocked in get waits for run on threads of its worker.
    max_extra_workers: int = 64
    # Tasks on such threads on one node at which its drivers are warned (once)
    # that recursion keeps many tasks alive.
    nested_tasks_warning: int = 200
    idle_worker_timeout_s: float = 5.0
    # The raylet kills a worker (its task fails with OutOfMemoryError, or is
    # retried) when the node's memory in use passes this fraction, before
    # the kernel's OOM killer picks a service (Ray's memory_usage_threshold).
    memory_usage_threshold: float = 0.95
    # How often it looks (Ray's memory_monitor_refresh_ms); 0 turns it off.
    memory_monitor_refresh_ms: int = 250
    # Tasks a raylet keeps (queued, waiting, running) before it puts its
    # drivers on a submit allowance (they keep further tasks themselves and
    # send them as it has room). 0: 10,000, or fewer where a twentieth of
    # the node's memory holds fewer at ~5 KB per task.
    max_queued_tasks: int = 0
    # Bytes of small values (under inline_threshold) a raylet keeps in its
    # own memory before it asks every client to write them to the object
    # store instead (which spills), until it is back under 90%. 0: a tenth
    # of the node's memory.
    max_inline_bytes: int = 0
    # A store object the raylet has not heard of this long after it was
    # sealed (10x that if never sealed) is deleted: its writer died before
    # telling the raylet. 0 turns the sweep off.
    orphan_grace_s: float = 60.0
    # Drivers and workers on a raylet's node use its framed local socket
    # instead of gRPC for the per-task stream (same messages, less overhead).
    local_transport: bool = True
    # Fork workers from a pre-imported zygote process (a few ms each, shared
    # code pages) instead of starting each with `python -m` (~250 ms).
    worker_fork: bool = True
    # Forward what tasks print to their driver, prefixed "(task pid=N)".
    log_to_driver: bool = True
    # Once progress bars (ember.experimental.tqdm_ray) are drawn on the
    # driver's terminal, print clears and redraws them around its output (Ray's).
    tqdm_patch_print: bool = True
    # Nodes started by ember.init() and cluster_utils.Cluster serve TCP over
    # mutual TLS, with a CA made for the cluster (`ember start --tls` for
    # the CLI's; EMBER_TLS_CERT/KEY/CA give an operator's files instead).
    tls: bool = False
    # Prometheus metrics: every service serves /metrics (on its --host) at
    # its own port; 0 picks a free one. Off: no endpoints, workers do not
    # time their tasks, the raylet records no task outcomes or latencies
    # and clients send no ember.util.metrics values (bench/ compares both).
    metrics_enabled: bool = True
    metrics_gcs_port: int = 0
    metrics_raylet_port: int = 0
    metrics_objectstore_port: int = 0
    # How often a driver or worker sends its changed ember.util.metrics
    # values to its raylet.
    metrics_report_interval_s: float = 1.0
    # runtime_env: the largest working_dir or py_modules package (zipped,
    # after excludes) a driver uploads; how long a node keeps an environment
    # no worker uses before deleting it; how often it looks.
    runtime_env_max_bytes: int = 100 * 1024 * 1024
    runtime_env_gc_grace_s: float = 600.0
    runtime_env_gc_interval_s: float = 10.0
    # Task events (ember list tasks, ember timeline): each raylet keeps this
    # many (about 3 a task: submitted, dispatched, ran), dropping the oldest.
    # Off: nothing is recorded and workers do not time their tasks (unless
    # metrics are on).
    task_events_enabled: bool = True
    task_events_buffer_size: int = 30000
    # The client API (clients in other languages): the largest value one Put
    # takes (it is assembled in the raylet's memory), and the largest
    # arguments a call carries (larger ones are put first, passed by ref).
    client_api_max_value_bytes: int = 1 << 30
    client_api_max_args_bytes: int = 8 << 20
    # The web UI (ember-dashboard) that `ember start --head` starts: its
    # address (loopback unless told), and whether it starts at all.
    # ember.init() clusters start none.
    include_dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265
    session_root: str = DEFAULT_SESSION_ROOT
    log_json: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> "Config":
        values: dict[str, Any] = {}
        path = path or os.environ.get("EMBER_CONFIG_FILE")
        if path:
            values.update(json.loads(pathlib.Path(path).read_text()))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, field in fields.items():
            raw = os.environ.get(f"EMBER_{name.upper()}")
            if raw is not None:
                values[name] = _parse(raw, field.type)
        unknown = set(values) - set(fields)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**values)


def _parse(raw: str, type_name: Any) -> Any:
    t = str(type_name)
    if t == "bool":
        return raw.lower() in ("1", "true", "yes", "on")
    if t == "int":
        return int(raw)
    if t == "float":
        return float(raw)
    return raw
