"""Starting and stopping the processes of one node: the GCS (head only),
the object store and the raylet. Used by `ember.init()` (a private local
cluster), `ember start`, and `ember.cluster_utils.Cluster`.

Services on one node talk over unix sockets in the session directory, whose
paths are known before anything starts, so all three start at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable

import psutil

from ember._private import session
from ember_common import auth, ids, node_memory, tls
from ember_common.config import Config

PROMETHEUS_SD_FILE = "prometheus_sd.json"  # (the GCS's ember_gcs.metrics_discovery writes it)


@dataclasses.dataclass
class NodeProcesses:
    node_id: bytes
    session_dir: pathlib.Path
    gcs_address: str            # host:port other nodes and drivers use
    raylet_socket: str
    raylet_local_socket: str
    store_dir: str
    pids: dict[str, int]
    popens: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)
    # Each service's Prometheus /metrics port (by process name; 0: metrics off).
    metrics_ports: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def discovery_file(self) -> pathlib.Path:
        """The head's Prometheus file-discovery list (written by its GCS)."""
        return self.session_dir / PROMETHEUS_SD_FILE

    @property
    def record(self) -> pathlib.Path:
        return self.session_dir / "nodes" / f"{self.node_id.hex()}.json"

    def stop(self, timeout: float = 5.0) -> None:
        stop_pids(self.pids, self.session_dir, timeout)
        for p in self.popens:
            try:
                p.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.store_dir, ignore_errors=True)
        self.record.unlink(missing_ok=True)

    def kill(self) -> None:
        """Crash the node: SIGKILL every process of it (no unregistering)."""
        kill_pids(self.pids, self.session_dir)
        for p in self.popens:
            p.poll()  # reap
        shutil.rmtree(self.store_dir, ignore_errors=True)
        self.record.unlink(missing_ok=True)


def _session_processes(pids: dict[str, int], session_dir: pathlib.Path) -> list[tuple[psutil.Process, list[psutil.Process]]]:
    """The recorded processes still of this session (a recorded pid may have
    been reused by an unrelated process since), each with its children, in
    dependency order: dashboard, raylet, object store, GCS."""
    order = sorted(pids.items(), key=lambda kv: {"dashboard": 0, "raylet": 1, "objectstore": 2, "gcs": 3}
                   .get(kv[0].split("-")[0], 4))
    found = []
    for _, pid in order:
        try:
            proc = psutil.Process(pid)
            if str(session_dir) in " ".join(proc.cmdline()):
                found.append((proc, proc.children(recursive=True)))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    psutil.wait_procs(procs, timeout=5)


def kill_pids(pids: dict[str, int], session_dir: pathlib.Path) -> None:
    """SIGKILL a node's processes and their children (a crash: tests, `ember stop --force`)."""
    _kill([p for proc, children in _session_processes(pids, session_dir) for p in (*children, proc)])


def stop_pids(pids: dict[str, int], session_dir: pathlib.Path, timeout: float = 5.0) -> None:
    """SIGTERM in dependency order (raylet, store, gcs), then SIGKILL stragglers."""
    procs = []
    for proc, children in _session_processes(pids, session_dir):
        try:
            proc.send_signal(signal.SIGTERM)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        procs += [proc, *children]
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    _kill(alive)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _spawn(args: list[str], log: pathlib.Path, env: dict[str, str], detached: bool) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=detached, close_fds=True,
        )


def prepare_tls(session_dir: pathlib.Path, host: str, *, enabled: bool,
                ca_dir: pathlib.Path | None = None) -> tls.TlsFiles | None:
    """The TLS files a node's services will use: the operator's
    (EMBER_TLS_CERT/KEY/CA), else, when `enabled`, a node certificate made in
    the session and signed by the CA in `ca_dir` (a new CA, when None: a
    head's). None: plaintext."""
    given = tls.from_environment()
    if given is not None or not enabled:
        return given
    from ember._private import certificates  # (cryptography: only where certificates are made)

    directory = session.tls_dir(session_dir)
    if ca_dir is None:
        ca_cert, ca_key = certificates.make_ca(directory, session_dir.name)
    else:
        ca_cert, ca_key = ca_dir / certificates.CA_CERT, ca_dir / certificates.CA_KEY
        if not (ca_cert.is_file() and ca_key.is_file()):
            raise ValueError(f"no cluster CA in {ca_dir} ({certificates.CA_CERT} and {certificates.CA_KEY}): "
                             "copy the head's session tls/ directory, or give this node its own files with "
                             f"{tls.CERT_ENV}, {tls.KEY_ENV} and {tls.CA_ENV}")
    return certificates.issue_node(directory, ca_cert, ca_key, [host])


def start_node(
    session_dir: pathlib.Path,
    token: str,
    *,
    head: bool,
    gcs_address: str | None = None,
    gcs_port: int = 0,
    host: str = "127.0.0.1",
    num_cpus: float | None = None,
    num_gpus: float = 0,
    memory: float = 0,
    resources: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
    object_store_bytes: int | None = None,
    storage: str = "memory",
    cluster_name: str = "default",
    gcs_replicas: int = 1,
    detached: bool = False,
    config: Config | None = None,
    tls_files: tls.TlsFiles | None = None,
    timeout: float = 30.0,
    metrics_ports: dict[str, int] | None = None,
    autoscaling_config: str | pathlib.Path | None = None,
) -> NodeProcesses:
    """Start a node's services and wait until they serve (over TLS with
    `tls_files`, see prepare_tls). `metrics_ports` ("gcs", "raylet",
    "objectstore") overrides the config's metrics ports. `autoscaling_config`
    (head only): the file every GCS replica runs the autoscaler with."""
    config = config or Config.load()
    ports = {"gcs": config.metrics_gcs_port, "raylet": config.metrics_raylet_port,
             "objectstore": config.metrics_objectstore_port, **(metrics_ports or {})}
    node_id = ids.new_unique_id()
    short = node_id.hex()[:8]
    if len(str(session_dir / f"raylet-{short}.local.sock").encode()) > 107:  # sockaddr_un's limit
        raise ValueError(f"the session directory {session_dir} is too long for unix socket paths "
                         "(107 bytes at most): use a shorter EMBER_SESSION_ROOT")
    logs = session_dir / "logs"
    # The services read the same metrics switch as this config says.
    env = {**os.environ, auth.TOKEN_ENV: token, "EMBER_METRICS_ENABLED": "1" if config.metrics_enabled else "0",
           "EMBER_TASK_EVENTS_ENABLED": "1" if config.task_events_enabled else "0",
           "EMBER_TASK_EVENTS_BUFFER_SIZE": str(config.task_events_buffer_size),
           **(tls_files.env() if tls_files else {})}
    common = ["--session-dir", str(session_dir), "--host", host]
    if not detached:
        common += ["--parent-pid", str(os.getpid())]
    ready: dict[str, pathlib.Path] = {}
    popens: list[subprocess.Popen[bytes]] = []

    def ready_file(name: str) -> str:
        ready[name] = session_dir / f"{name}.ready"
        ready[name].unlink(missing_ok=True)
        return str(ready[name])

    # Every port not given is picked by the service that binds it (port 0)
    # and read back from its ready file: a port chosen here and bound later
    # could be taken by another process meanwhile.
    gcs_names: list[str] = []
    if head:
        if gcs_replicas > 1 and not storage.startswith("etcd://"):
            raise ValueError("several GCS replicas need shared storage: --storage etcd://HOST:PORT")
        def spawn_gcs(i: int, port: int) -> subprocess.Popen[bytes]:
            name = gcs_names[i]
            return _spawn(
                ["ember_gcs.main", *common, "--port", str(port), "--socket", str(session_dir / f"{name}.sock"),
                 "--ready-file", ready_file(name), "--log-file", str(logs / f"{name}.log"),
                 "--storage", storage, "--cluster-name", cluster_name,
                 "--metrics-port", str(ports["gcs"] if i == 0 else 0),
                 *(["--autoscaling-config", str(autoscaling_config)] if autoscaling_config else [])],
                logs / f"{name}.out", env, detached)

        # The first keeps the classic names; replicas 1.. are numbered.
        gcs_names = ["gcs" if i == 0 else f"gcs-{i}" for i in range(gcs_replicas)]
        if gcs_replicas == 1:  # its port, if not given, is its own pick
            popens.append(spawn_gcs(0, gcs_port))
            local_gcs = f"unix:{session_dir / 'gcs.sock'}"
        else:
            # Replicas are restarted at their addresses (systemd, or by
            # hand with their command lines): ports fixed in advance, the
            # raylet told them all; one taken meanwhile is chosen again.
            popens.extend(_start_replicas(spawn_gcs, gcs_port, host, gcs_names, ready, session_dir, timeout))
            gcs_address = _gcs_addresses(ready, gcs_names, host)
            local_gcs = gcs_address
    else:
        if not gcs_address:
            raise ValueError("a non-head node needs the GCS address")
        local_gcs = gcs_address

    store_dir = f"/dev/shm/ember-{session_dir.name[-6:]}-{short}"
    store_socket = session_dir / f"store-{short}.sock"
    # The raylet advertises the store's ports (other nodes pull from it,
    # Prometheus scrapes it): it reads them from the store's ready file.
    store_metrics_port = ports["objectstore"] or 0
    store_args = ["ember_objectstore.main", *common, "--port", "0", "--socket", str(store_socket),
                  "--transfer-port", "0", "--metrics-port", str(store_metrics_port),
                  "--directory", store_dir, "--node-id", node_id.hex(),
                  "--ready-file", ready_file(f"objectstore-{short}"), "--log-file", str(logs / f"objectstore-{short}.log")]
    # Sized once here, so the store's capacity and the raylet's
    # object_store_memory resource agree.
    object_store_bytes = (object_store_bytes or config.object_store_bytes
                          or node_memory.default_object_store_bytes(config.object_store_fraction))
    store_args += ["--capacity", str(int(object_store_bytes))]
    popens.append(_spawn(store_args, logs / f"objectstore-{short}.out", env, detached))

    raylet_socket = session_dir / f"raylet-{short}.sock"
    local_socket = session_dir / f"raylet-{short}.local.sock"
    cpus = num_cpus if num_cpus is not None else (os.cpu_count() or 1)
    raylet_args = [
        "ember_raylet.main", *common, "--socket", str(raylet_socket), "--local-socket", str(local_socket),
        "--node-id", node_id.hex(),
        "--gcs-address", local_gcs, "--store-address", f"unix:{store_socket}", "--store-dir", store_dir,
        "--store-ready-file", str(ready[f"objectstore-{short}"]), "--metrics-port", str(ports["raylet"]),
        "--num-cpus", str(cpus), "--num-gpus", str(num_gpus), "--memory", str(memory),
        "--object-store-memory", str(int(object_store_bytes)),
        "--resources", json.dumps(resources or {}), "--labels", json.dumps(labels or {}),
        "--ready-file", ready_file(f"raylet-{short}"), "--log-file", str(logs / f"raylet-{short}.log"),
    ]
    if head:
        raylet_args.append("--head")
    popens.append(_spawn(raylet_args, logs / f"raylet-{short}.out", env, detached))

    names = [*gcs_names, f"objectstore-{short}", f"raylet-{short}"]
    pids = dict(zip(names, (p.pid for p in popens)))
    node = NodeProcesses(node_id, session_dir, gcs_address, str(raylet_socket), str(local_socket), store_dir, pids, popens)
    session.write_json(node.record, {"node_id": node_id.hex(), "pids": pids, "store_dir": store_dir,
                                     "gcs_address": gcs_address, "head": head})
    try:
        _wait_ready(ready, popens, names, session_dir, timeout)
        if head:
            node.gcs_address = _gcs_addresses(ready, gcs_names, host)  # any replica leads the way to the leader
        node.metrics_ports = {name: session.read_json(path).get("metrics_port", 0) for name, path in ready.items()}
        store_port = session.read_json(ready[f"objectstore-{short}"])["port"]
        session.write_json(node.record, {"node_id": node_id.hex(), "pids": pids, "store_dir": store_dir,
                                         "gcs_address": node.gcs_address, "head": head, "store_port": store_port})
    except BaseException:
        node.stop(timeout=2)
        raise
    return node


def start_dashboard(node: NodeProcesses, token: str, host: str, port: int, *, detached: bool,
                    tls_files: tls.TlsFiles | None = None, timeout: float = 30.0) -> str:
    """Start the head's web UI (ember-dashboard) on host:port (0: a free
    one), one of the node's processes from then on (`ember stop` stops it);
    its URL once it serves."""
    session_dir = node.session_dir
    ready = session_dir / "dashboard.ready"
    ready.unlink(missing_ok=True)
    # The head's own GCS socket when it has one (no TLS, no failover to wait for).
    gcs = f"unix:{session_dir / 'gcs.sock'}" if (session_dir / "gcs.sock").exists() else node.gcs_address
    args = ["ember_dashboard.main", "--host", host, "--port", str(port), "--gcs-address", gcs,
            "--session-dir", str(session_dir), "--ready-file", str(ready),
            "--log-file", str(session_dir / "logs" / "dashboard.log")]
    if not detached:
        args += ["--parent-pid", str(os.getpid())]
    env = {**os.environ, auth.TOKEN_ENV: token, **(tls_files.env() if tls_files else {})}
    proc = _spawn(args, session_dir / "logs" / "dashboard.out", env, detached)
    node.popens.append(proc)
    node.pids["dashboard"] = proc.pid
    data = session.read_json(node.record)
    session.write_json(node.record, {**data, "pids": node.pids})
    _wait_ready({"dashboard": ready}, [proc], ["dashboard"], session_dir, timeout)
    info = session.read_json(ready)
    shown = info["host"] if info["host"] not in ("0.0.0.0", "::", "") else socket.gethostname()
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{info['port']}"


def _start_replicas(spawn: Callable[[int, int], subprocess.Popen[bytes]], first_port: int, host: str,
                    names: list[str], ready: dict[str, pathlib.Path], session_dir: pathlib.Path,
                    timeout: float) -> list[subprocess.Popen[bytes]]:
    """GCS replicas on ports chosen here (`first_port` for the first, if
    given), ready; a replica whose port another process took between the
    choice and its bind is started again on another (three tries)."""
    popens = [spawn(i, (first_port if i == 0 and first_port else free_port(host))) for i in range(len(names))]
    for attempt in range(3):
        try:
            _wait_ready({name: ready[name] for name in names}, popens, names, session_dir, timeout)
            return popens
        except RuntimeError as e:
            lost = [i for i, p in enumerate(popens) if p.poll() is not None and "in use" in str(e)
                    and not (i == 0 and first_port)]
            if not lost or attempt == 2:
                for p in popens:
                    if p.poll() is None:
                        p.kill()
                raise
            for i in lost:
                popens[i] = spawn(i, free_port(host))
    return popens


def _gcs_addresses(ready: dict[str, pathlib.Path], gcs_names: list[str], host: str) -> str:
    """The replicas' addresses, from the ports they bound (their ready files)."""
    return ",".join(f"{host}:{session.read_json(ready[name])['port']}" for name in gcs_names)


def _wait_ready(ready: dict[str, pathlib.Path], popens: list[subprocess.Popen[bytes]], names: list[str],
                session_dir: pathlib.Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(ready)
    while pending:
        for name, path in list(pending.items()):
            if path.exists():
                del pending[name]
        for name, proc in zip(names, popens):
            if proc.poll() is not None:
                log_tail = _tail(session_dir / "logs" / f"{name}.log") or _tail(session_dir / "logs" / f"{name}.out")
                raise RuntimeError(f"{name} exited with code {proc.returncode} while starting:\n{log_tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"services did not become ready in {timeout:g}s: {sorted(pending)}")
        time.sleep(0.005)


def _tail(path: pathlib.Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_session(session_dir: pathlib.Path, timeout: float = 5.0, force: bool = False) -> int:
    """Stop every node recorded in a session (force: SIGKILL at once, no
    unregistering); returns how many."""
    stopped = 0
    for record in sorted((session_dir / "nodes").glob("*.json")):
        stop_recorded_node(record, timeout, force)
        stopped += 1
    return stopped


def stop_recorded_node(record: pathlib.Path, timeout: float = 5.0, force: bool = False) -> None:
    """Stop the node of one record in a session's nodes/ (as `ember stop`
    does for each), and remove its shared memory and record. Idempotent."""
    session_dir = record.parent.parent
    try:
        data: dict[str, Any] = session.read_json(record)
    except (OSError, ValueError):
        return  # stopped already
    pids = {**data.get("pids", {}), **(_restarted_services(session_dir, data.get("pids", {}))
                                       if data.get("head") else {})}
    if force:
        kill_pids(pids, session_dir)
    else:
        stop_pids(pids, session_dir, timeout)
    if data.get("store_dir"):
        shutil.rmtree(data["store_dir"], ignore_errors=True)
    record.unlink(missing_ok=True)


def _restarted_services(session_dir: pathlib.Path, recorded: dict[str, int]) -> dict[str, int]:
    """Services of the session started again since it was recorded (a GCS
    replica restarted by systemd or by hand writes its ready file anew):
    their ready files name their pids."""
    found = {}
    for ready in session_dir.glob("*.ready"):
        try:
            pid = int(session.read_json(ready)["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not a service's
        if pid not in recorded.values():
            found[f"{ready.stem}-restarted"] = pid
    return found
