"""One GCS serving many simulated nodes: GCS CPU, memory, heartbeat lag and
the cluster view's cost against node count, and the failover time of a
GCS on etcd with all those nodes (issue 15, point 5).

    python bench/gcs_scale.py [--nodes 10,100,300,1000] [--seconds 10]
        [--failover-nodes 1000] [--out bench/gcs_scale.json] [--plot bench/gcs_scale.png]

What is real: the `ember-gcs` process (in memory, or three replicas on a
real etcd for the failover point), and every simulated node is what a
raylet is to the GCS: its own `AioGcsClient` (the raylet's leader-following
client) on a gRPC channel and TCP connection of its own on loopback, which
registers (RegisterNode with a raylet's NodeInfo), then every
`report_interval_s` (the raylet's 0.5 s) sends a ReportResources (its
heartbeat and resource report) whose reply is the cluster view, as
services/raylet/service.py's report loop does. Simulated nodes live, a few
hundred each, in asyncio loops of `--procs` processes.

What is left out, to keep the simulation's own CPU off the GCS's 2-core
machine: most simulated nodes count the view's bytes instead of parsing
it (the GCS's work to build and send it is the same). One node per
process (the probe) parses every view and applies it to a raylet's
ClusterView, timed: that is the "view pull" a raylet pays per report.

Measured per node count, over a window after registration and warm-up:
the GCS process's own CPU time / wall (cores; the simulators' CPU is
measured apart), its RSS and PSS, heartbeat lag as the GCS sees it (its
`ember_gcs_node_report_age_seconds` metric: the age of every node's last
report, sampled each second; a node reports every interval + round trip,
so an age past that is lag), the GCS's handler time for ReportResources
(its `ember_gcs_rpc_latency_seconds`), the report round trip the nodes
see, the report rate reached against the target, and the machine's load.
The failover point: the leader replica SIGKILLed; the time until every
node has had a report answered by the new leader.

Each run stops by itself: every process it starts is ended at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import pathlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import grpc.aio  # noqa: E402
import psutil  # noqa: E402
from ember.v1 import common_pb2, gcs_pb2, gcs_pb2_grpc  # noqa: E402

from ember_common import auth, rpc  # noqa: E402
from ember_common.gcs_client import AioGcsClient, GcsClient  # noqa: E402

REPORT_INTERVAL_S = 0.5  # the raylet's (ember_common.config.Config.report_interval_s)
REGISTRATION_TIMEOUT_S = 120.0
_REPORT_METHOD = "/ember.v1.Gcs/ReportResources"


# ---------------------------------------------------------------- simulator
class _ViewSizeStub(gcs_pb2_grpc.GcsStub):
    """The Gcs stub, but ReportResources answers the view's size in bytes,
    unparsed (the simulator's CPU is not the GCS's)."""

    def __init__(self, channel: Any) -> None:
        super().__init__(channel)
        self.ReportResources = channel.unary_unary(
            _REPORT_METHOD, request_serializer=gcs_pb2.ReportResourcesRequest.SerializeToString,
            response_deserializer=len)


class SimGcsClient(AioGcsClient):
    """A simulated raylet's GCS client: the raylet's own, on a channel with
    a subchannel (a TCP connection) of its own, as a raylet on another host
    has. `parse_views=False` leaves the cluster view in each report's reply
    unparsed (its size in bytes instead)."""

    def __init__(self, addresses: str, token: str | None, parse_views: bool) -> None:
        super().__init__(addresses, token)
        if not parse_views:
            self.stub_type = _ViewSizeStub

    def _open_channel(self, address: str) -> grpc.aio.Channel:
        return rpc.aio_channel(address, self._token, [("grpc.use_local_subchannel_pool", 1)])


def node_info(index: int, run: str) -> gcs_pb2.NodeInfo:
    """What a raylet registers (services/raylet/service.py `_node_info`),
    with made-up ports and paths: the GCS only stores and lists them."""
    node_id = bytes.fromhex(run) + index.to_bytes(4, "big") + bytes(8)  # 16 bytes: ids.UNIQUE_ID_SIZE
    session = f"/tmp/ember-sessions/session_20261207-205530_{index}_{run}"  # (a real one's length)
    info = gcs_pb2.NodeInfo(
        node_id=node_id, node_address="127.0.0.1", raylet_port=20000 + index % 40000,
        object_store_port=30000 + index % 30000, object_transfer_port=40000 + index % 20000,
        is_head=index == 0, session_dir=session, raylet_socket=f"{session}/sockets/raylet-{index}",
        raylet_local_socket=f"{session}/sockets/raylet-local-{index}",
        object_store_socket=f"{session}/sockets/store-{index}", object_store_dir=f"/dev/shm/ember-{run}-{index}",
        metrics_port=50000 + index % 10000,
        object_store_metrics_port=60000 + index % 5000, start_time=time.time())
    info.total.amounts.update({"CPU": 16.0, "memory": 64e9, "object_store_memory": 8e9})
    info.available.CopyFrom(info.total)
    return info


@dataclasses.dataclass
class SimNode:
    info: gcs_pb2.NodeInfo
    client: SimGcsClient
    probe: bool
    reports: int = 0
    errors: int = 0
    # The failover mark: the first answered report sent at or after it.
    mark: float = 0.0
    first_after_mark: float = 0.0


class Simulator:
    """Simulated nodes in one asyncio loop, driven over stdin/stdout
    (one JSON object a line each way)."""

    def __init__(self, addresses: str, token: str, run: str, first: int, count: int, interval: float,
                 call: str = "report") -> None:
        self.interval = interval
        self.call = call  # "info": GetClusterInfo instead of reports (the GCS's cost of any RPC)
        self.nodes = [SimNode(node_info(first + i, run), SimGcsClient(addresses, token, parse_views=i == 0), i == 0)
                      for i in range(count)]
        self.rtts: list[float] = []
        self.errors: list[str] = []  # codes of failed reports (after the client's own retries)
        self.view_bytes: list[int] = []
        self.apply_s: list[float] = []  # the probe's parse + ClusterView.update
        self.view_sizes: list[int] = []  # nodes in the probe's view
        self.registered = 0
        self.all_registered = asyncio.Event()

    async def _register(self, node: SimNode) -> None:
        while True:  # (a raylet that cannot register exits and is restarted: the same to the GCS)
            try:
                await node.client.RegisterNode(gcs_pb2.RegisterNodeRequest(node=node.info), wait_for_ready=True,
                                               timeout=30)
                break
            except grpc.aio.AioRpcError as e:
                self.errors.append(f"RegisterNode {e.code().name}")
        self.registered += 1
        if self.registered == len(self.nodes):
            self.all_registered.set()

    async def _node(self, node: SimNode) -> None:
        """A raylet's life as the GCS sees it: registration, then its report
        loop (services/raylet/service.py `_report_loop`), the view applied
        by the probe only."""
        from ember_raylet.cluster_view import ClusterView

        await asyncio.sleep(random.uniform(0, self.interval))  # raylets start at different times
        await self._register(node)
        view = ClusterView(node.info.node_id)
        while True:
            await asyncio.sleep(self.interval)
            request = gcs_pb2.ReportResourcesRequest(node_id=node.info.node_id)
            request.available.CopyFrom(node.info.available)
            request.total.CopyFrom(node.info.total)
            sent = time.monotonic()
            try:
                if self.call == "info":
                    await node.client.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5)
                    node.reports += 1
                    self.rtts.append(time.monotonic() - sent)
                    continue
                reply = await node.client.ReportResources(request, timeout=5)
            except grpc.aio.AioRpcError as e:
                node.errors += 1
                self.errors.append(e.code().name)
                if e.code() == grpc.StatusCode.NOT_FOUND:  # as the raylet: register again
                    await node.client.RegisterNode(gcs_pb2.RegisterNodeRequest(node=node.info), timeout=30)
                continue
            now = time.monotonic()
            node.reports += 1
            self.rtts.append(now - sent)
            if node.mark and sent >= node.mark and not node.first_after_mark:
                node.first_after_mark = now
            if node.probe:
                started = time.perf_counter()
                data = reply.SerializeToString()  # (its size, as the others count it)
                view.update(list(reply.nodes))
                self.apply_s.append(time.perf_counter() - started)
                self.view_bytes.append(len(data))
                self.view_sizes.append(len(view.nodes) + 1)
            else:
                self.view_bytes.append(reply)

    def _stats(self, reset: bool) -> dict[str, Any]:
        rtts = sorted(self.rtts)
        out = {
            "registered": self.registered, "reports": sum(n.reports for n in self.nodes),
            "errors": len(self.errors), "error_codes": sorted(set(self.errors)), "rtts": len(rtts),
            "rtt_p50_s": _pct(rtts, 50), "rtt_p99_s": _pct(rtts, 99), "rtt_max_s": rtts[-1] if rtts else None,
            "view_bytes": statistics.mean(self.view_bytes) if self.view_bytes else 0,
            "apply_p50_s": _pct(sorted(self.apply_s), 50), "apply_max_s": max(self.apply_s, default=None),
            "probe_view_nodes": self.view_sizes[-1] if self.view_sizes else 0,
            "nodes_reporting": sum(1 for n in self.nodes if n.reports > 0),
            "min_reports": min((n.reports for n in self.nodes), default=0),
        }
        if reset:
            self.rtts, self.view_bytes, self.apply_s, self.errors = [], [], [], []
        return out

    def _failover(self) -> dict[str, Any]:
        done = [n.first_after_mark - n.mark for n in self.nodes if n.first_after_mark]
        return {"done": len(done), "waits": done}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        loops = [asyncio.create_task(self._node(n)) for n in self.nodes]
        with contextlib.suppress(asyncio.TimeoutError):  # a GCS too slow to register them all: say how many
            await asyncio.wait_for(self.all_registered.wait(), REGISTRATION_TIMEOUT_S)
        _say({"registered": self.registered})
        try:
            while line := await reader.readline():
                command = json.loads(line)
                what = command["cmd"]
                if what == "stats":
                    _say(self._stats(command.get("reset", False)))
                elif what == "mark":
                    for n in self.nodes:
                        n.mark, n.first_after_mark = command["t"], 0.0
                    _say({"marked": True})
                elif what == "failover":
                    _say(self._failover())
                elif what == "stop":
                    break
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await asyncio.gather(*(n.client.close() for n in self.nodes), return_exceptions=True)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def _sim_main(a: argparse.Namespace) -> None:
    token = os.environ.get(auth.TOKEN_ENV, "")
    asyncio.run(Simulator(a.gcs, token, a.run, a.first, a.count, a.interval, a.call).run())


# ------------------------------------------------------------- coordinator
class SimProcess:
    """One simulator process and its line protocol."""

    def __init__(self, gcs: str, token: str, run: str, first: int, count: int, interval: float, call: str) -> None:
        self.count = count
        self.proc = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).resolve()), "--sim", "--gcs", gcs, "--run", run,
             "--first", str(first), "--count", str(count), "--interval", str(interval), "--call", call],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, auth.TOKEN_ENV: token}, text=True)

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a simulator exited with {self.proc.wait()}")
        return json.loads(line)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"cmd": "stop"}\n')
                self.proc.stdin.flush()
                self.proc.wait(15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class Simulators:
    """`nodes` simulated nodes spread over `procs` processes."""

    def __init__(self, gcs: str, token: str, nodes: int, procs: int, interval: float, call: str = "report") -> None:
        self.run = os.urandom(4).hex()
        per = -(-nodes // procs)
        self.procs: list[SimProcess] = []
        self.registration: tuple[float | None, int] = (None, 0)  # wait_registered's answer
        for first in range(0, nodes, per):
            self.procs.append(SimProcess(gcs, token, self.run, first, min(per, nodes - first), interval, call))

    def registered(self) -> int:
        return sum(p.read()["registered"] for p in self.procs)

    def ask(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        return [p.ask(command) for p in self.procs]

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.procs]

    def node_ids(self) -> set[bytes]:
        return {node_info(i, self.run).node_id for i in range(sum(p.count for p in self.procs))}

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


class GcsProcess:
    """An `ember-gcs` process (in memory, or one replica on etcd)."""

    def __init__(self, workdir: pathlib.Path, token: str, storage: str = "memory", ttl: float = 3.0,
                 name: str = "gcs", health_timeout_s: float | None = None) -> None:
        self.session = workdir / f"{name}-{time.monotonic_ns()}"
        (self.session / "logs").mkdir(parents=True)
        ready = self.session / "gcs.ready"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ember_gcs.main", "--storage", storage, "--cluster-name", "scale",
             "--leader-lease-ttl", str(ttl), "--session-dir", str(self.session), "--port", "0",
             "--metrics-port", "0", "--ready-file", str(ready),
             *(["--health-timeout", str(health_timeout_s)] if health_timeout_s else [])],
            env={**os.environ, auth.TOKEN_ENV: token}, stdout=subprocess.DEVNULL,
            stderr=open(self.session / "logs" / "gcs.err", "wb"))
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the GCS did not start: {(self.session / 'logs' / 'gcs.err').read_text()[-2000:]}")
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        self.address = f"127.0.0.1:{info['port']}"
        self.metrics_port = info["metrics_port"]
        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def memory(self) -> tuple[int, int]:
        m = self.ps.memory_full_info()
        return m.rss, m.pss

    def scrape(self, method: str = "ReportResources") -> "Scrape":
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return Scrape.parse(r.read().decode(), method)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclasses.dataclass
class Scrape:
    """What one scrape of the GCS's /metrics says of nodes and reports."""

    ages: list[float]
    alive: int
    report_s_sum: float
    report_count: float

    @classmethod
    def parse(cls, text: str, method: str = "ReportResources") -> "Scrape":
        """`method`: whose handler time and count to read."""
        ages, alive, s_sum, count = [], 0, 0.0, 0.0
        for line in text.splitlines():
            if line.startswith("ember_gcs_node_report_age_seconds{"):
                ages.append(float(line.rsplit(" ", 1)[1]))
            elif line.startswith('ember_nodes{state="alive"}'):
                alive = int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith(f'ember_gcs_rpc_latency_seconds_sum{{method="{method}"}}'):
                s_sum = float(line.rsplit(" ", 1)[1])
            elif line.startswith(f'ember_gcs_rpc_latency_seconds_count{{method="{method}"}}'):
                count = float(line.rsplit(" ", 1)[1])
        return cls(ages, alive, s_sum, count)


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    t = psutil.cpu_times()
    total = sum(t)
    return total - t.idle - getattr(t, "iowait", 0.0), total


def _cpu_of(pids: list[int]) -> float:
    out = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = psutil.Process(pid).cpu_times()
            out += t.user + t.system
    return out


def measure(gcs: GcsProcess, sims: Simulators, nodes: int, seconds: float, interval: float,
            method: str = "ReportResources") -> dict[str, Any]:
    """One window of `seconds` on a GCS serving `nodes` registered nodes
    (each calling `method` every interval)."""
    sims.ask({"cmd": "stats", "reset": True})
    first = gcs.scrape(method)
    cpu0, sim0, (busy0, total0) = gcs.cpu_s(), _cpu_of(sims.pids()), _machine_busy()
    load0 = os.getloadavg()[0]
    started = time.monotonic()
    max_ages: list[float] = []
    all_ages: list[float] = []
    scrape_cpu = 0.0
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        before = gcs.cpu_s()
        s = gcs.scrape(method)
        scrape_cpu += gcs.cpu_s() - before  # (the scrape's own cost, taken out below)
        if s.ages:
            max_ages.append(max(s.ages))
            all_ages.extend(s.ages)
    wall = time.monotonic() - started
    cpu, sim_cpu, (busy1, total1) = gcs.cpu_s() - cpu0, _cpu_of(sims.pids()) - sim0, _machine_busy()
    last = gcs.scrape(method)
    stats = sims.ask({"cmd": "stats", "reset": True})
    rss, pss = gcs.memory()
    reports = sum(s["reports"] for s in stats)
    all_ages.sort()
    handled = last.report_count - first.report_count
    return {
        "nodes": nodes, "window_s": round(wall, 2),
        "gcs_cpu_cores": round(max(0.0, cpu - scrape_cpu) / wall, 4),
        "gcs_cpu_ms_per_report": round(1e3 * max(0.0, cpu - scrape_cpu) / max(1.0, handled), 4),
        "gcs_cpu_s": round(cpu - scrape_cpu, 3), "scrape_cpu_s": round(scrape_cpu, 3),
        "gcs_rss_mb": round(rss / 1e6, 1), "gcs_pss_mb": round(pss / 1e6, 1),
        "alive_in_gcs": last.alive,
        "reports_per_s": round(handled / wall, 1), "target_reports_per_s": round(nodes / interval, 1),
        "handler_ms_mean": round(1e3 * (last.report_s_sum - first.report_s_sum) / max(1.0, handled), 4),
        "report_age_p50_s": _round(_pct(all_ages, 50)), "report_age_p99_s": _round(_pct(all_ages, 99)),
        "report_age_max_s": _round(max(max_ages, default=None)),
        "rtt_p50_s": _round(statistics.median([s["rtt_p50_s"] for s in stats if s["rtt_p50_s"] is not None] or [0])),
        "rtt_p99_s": _round(max((s["rtt_p99_s"] or 0) for s in stats)),
        "view_bytes": round(statistics.mean(s["view_bytes"] for s in stats)),
        "view_apply_p50_s": _round(statistics.median([s["apply_p50_s"] for s in stats if s["apply_p50_s"]] or [0])),
        "probe_view_nodes": min(s["probe_view_nodes"] for s in stats),
        "report_errors": sum(s["errors"] for s in stats), "sim_reports": reports,
        "error_codes": sorted({c for s in stats for c in s["error_codes"]}),
        "nodes_reporting": sum(s["nodes_reporting"] for s in stats),
        "min_reports_per_node": min(s["min_reports"] for s in stats),
        "nodes_in_age_metric": len(last.ages),
        "sim_cpu_cores": round(sim_cpu / wall, 3),
        "machine_busy_cores": round(psutil.cpu_count() * (busy1 - busy0) / max(1e-9, total1 - total0), 2),
        "loadavg_1m": round((load0 + os.getloadavg()[0]) / 2, 2),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def wait_registered(sims: Simulators, gcs: GcsClient, nodes: int, timeout: float = 60) -> tuple[float, int]:
    """(seconds until every simulated node registered and the GCS listed
    every one alive at once, nodes it lists alive); the seconds are None if
    that did not happen within `timeout` (a GCS too slow to hear every
    node within its health timeout declares some dead)."""
    started = time.monotonic()
    registered = sims.registered()
    if registered < nodes:
        return None, registered
    ids = sims.node_ids()
    while True:
        alive = {n.node_id for n in gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=30).nodes if n.alive}
        if ids <= alive:
            return time.monotonic() - started, len(alive)
        if time.monotonic() - started > timeout:
            return None, len(alive & ids)
        time.sleep(0.2)


def view_pull_s(gcs: GcsClient, repeat: int = 5) -> float:
    """Median time of a GetAllNodes (the whole view, parsed), as a client sees it."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=30)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextlib.contextmanager
def serving(workdir: pathlib.Path, token: str, nodes: int, procs: int, interval: float,
            storage: str = "memory", replicas: int = 1, ttl: float = 3.0,
            call: str = "report") -> Iterator[tuple[list[GcsProcess], Simulators, GcsClient]]:
    """GCS replicas and `nodes` simulated nodes, all registered; everything
    stopped on the way out."""
    gcss: list[GcsProcess] = []
    sims: Simulators | None = None
    client: GcsClient | None = None
    try:
        for i in range(replicas):
            gcss.append(GcsProcess(workdir, token, storage, ttl, name=f"gcs{i}",
                                   health_timeout_s=3600 if call == "info" else None))
        addresses = ",".join(g.address for g in gcss)
        client = GcsClient(addresses, token, failover_window_s=60)
        sims = Simulators(addresses, token, nodes, procs, interval, call)
        sims.registration = wait_registered(sims, client, nodes)
        yield gcss, sims, client
    finally:
        if sims is not None:
            sims.stop()
        if client is not None:
            client.close()
        for g in gcss:
            g.stop()


def leader_of(gcss: list[GcsProcess], client: GcsClient) -> GcsProcess:
    leader = client.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=10).leader_address
    return next(g for g in gcss if g.address == leader)


def run_point(workdir: pathlib.Path, token: str, nodes: int, seconds: float, procs: int, interval: float,
              warmup: float, profile: str | None = None, call: str = "report") -> dict[str, Any]:
    """`call="info"`: the nodes call GetClusterInfo (a trivial RPC) in place
    of their reports, and the GCS declares none dead: its cost per RPC
    through the same server and interceptors, the floor of a report's."""
    method = "GetClusterInfo" if call == "info" else "ReportResources"
    with serving(workdir, token, nodes, procs, interval, call=call) as (gcss, sims, client):
        time.sleep(warmup)
        with sampled(gcss[0].proc.pid, seconds, profile):
            point = measure(gcss[0], sims, nodes, seconds, interval, method)
        point["call"] = method
        point["get_all_nodes_s"] = round(view_pull_s(client), 4)
        point["storage"] = "memory"
        point["registered_all_s"] = _round(sims.registration[0])
        return point


@contextlib.contextmanager
def sampled(pid: int, seconds: float, path: str | None) -> Iterator[None]:
    """py-spy sampling the GCS, native frames too, for `seconds`, its
    stacks collapsed into `path` (flamegraph.pl's input); nothing if no path."""
    if not path:
        yield
        return
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                            "--native", "--format", "raw", "--output", path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            spy.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def run_failover(workdir: pathlib.Path, token: str, nodes: int, seconds: float, procs: int, interval: float,
                 warmup: float, ttl: float) -> dict[str, Any]:
    """Three replicas on a real etcd serving `nodes`; the steady state
    measured on the leader, then the leader SIGKILLed: the time until
    every node's report is answered by the new leader."""
    from tests.etcd_server import started

    etcd = started(workdir)
    try:
        with serving(workdir, token, nodes, procs, interval, storage=etcd.url, replicas=3, ttl=ttl) as (gcss, sims, client):
            time.sleep(warmup)
            leader = leader_of(gcss, client)
            point = measure(leader, sims, nodes, seconds, interval)
            point["storage"] = "etcd"
            point["registered_all_s"] = _round(sims.registration[0])
            kill_at = time.monotonic() + 0.2  # every report sent after this goes to the dead leader or the new one
            sims.ask({"cmd": "mark", "t": kill_at})
            time.sleep(max(0.0, kill_at - time.monotonic()))
            leader.stop(signal.SIGKILL)
            killed = time.monotonic()
            waits: list[float] = []
            while time.monotonic() - killed < 90:
                answers = sims.ask({"cmd": "failover"})
                waits = [w for a in answers for w in a["waits"]]
                if len(waits) == nodes:
                    break
                time.sleep(0.2)
            waits.sort()
            new_leader = leader_of([g for g in gcss if g is not leader], client)
            alive = {n.node_id for n in client.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=30).nodes if n.alive}
            point["failover"] = {
                "ttl_s": ttl, "nodes_served": len(waits), "all_s": _round(waits[-1] if waits else None),
                "p50_s": _round(_pct(waits, 50)), "first_s": _round(waits[0] if waits else None),
                "alive_in_new_leader": len(alive & sims.node_ids()),
            }
            time.sleep(2)
            point["failover"]["after"] = measure(new_leader, sims, nodes, min(seconds, 5), interval)
            return point
    finally:
        etcd.stop()


def _cores_at_full_rate(p: dict[str, Any]) -> float:
    """The GCS's CPU at every node's full report rate: its CPU per report
    times the reports the nodes would send if nothing were slow (where the
    simulators, short of CPU on a shared machine, sent fewer)."""
    return p["gcs_cpu_ms_per_report"] * p["target_reports_per_s"] / 1e3


def plot(points: list[dict[str, Any]], path: pathlib.Path, before: list[dict[str, Any]] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def reports(data: list[dict[str, Any]], storage: str = "memory") -> list[dict[str, Any]]:
        return [p for p in data if p["storage"] == storage and p.get("call", "ReportResources") == "ReportResources"]

    series = [("after", reports(points), "o-", "C0")] + ([("before", reports(before), "s--", "C1")] if before else [])
    etcd = reports(points, "etcd")
    floor = [p for p in points if p.get("call") == "GetClusterInfo"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0][0]
    for label, data, style, color in series:
        xs = [p["nodes"] for p in data]
        ax.plot(xs, [p["gcs_cpu_cores"] for p in data], style, color=color, label=f"{label}: measured")
        ax.plot(xs, [_cores_at_full_rate(p) for p in data], ":", color=color, marker="x",
                label=f"{label}: CPU/report x full report rate")
    if etcd:
        ax.plot([p["nodes"] for p in etcd], [p["gcs_cpu_cores"] for p in etcd], "r^", label="after, etcd leader")
    ax.axhline(1.0, color="grey", lw=0.8, ls="-.")
    ax.set_yscale("log")
    ax.set_title("GCS CPU (cores; one core is all a Python GCS can use)")
    ax = axes[0][1]
    for label, data, style, color in series:
        ax.plot([p["nodes"] for p in data], [p["gcs_cpu_ms_per_report"] for p in data], style, color=color,
                label=label)
    if floor:
        ax.plot([p["nodes"] for p in floor], [p["gcs_cpu_ms_per_report"] for p in floor], "kD",
                label="GetClusterInfo instead (the per-RPC floor)")
    ax.set_yscale("log")
    ax.set_title("GCS CPU per ReportResources (ms)")
    ax = axes[1][0]
    for label, data, style, color in series:
        ax.plot([p["nodes"] for p in data], [p["gcs_pss_mb"] for p in data], style, color=color, label=label)
    if etcd:
        ax.plot([p["nodes"] for p in etcd], [p["gcs_pss_mb"] for p in etcd], "r^", label="after, etcd leader")
    ax.set_title("GCS PSS (MB)")
    ax = axes[1][1]
    for label, data, style, color in series:
        xs = [p["nodes"] for p in data]
        ax.plot(xs, [p["report_age_p99_s"] for p in data], style, color=color, label=f"{label}: p99")
        ax.plot(xs, [p["report_age_max_s"] for p in data], ":", color=color, marker="x", label=f"{label}: max")
    ax.axhline(REPORT_INTERVAL_S, color="grey", lw=0.8, ls="-.")
    ax.set_yscale("log")
    ax.set_title("heartbeat age as the GCS sees it (s; a report is due every 0.5 s)")
    # Points where the GCS fell behind so far that it declared nodes dead
    # (and their new registrations added to the load): no steady state.
    collapsed = [p for _, data, _, _ in series for p in data if p["alive_in_gcs"] < p["nodes"]]
    for ax, key in ((axes[0][1], "gcs_cpu_ms_per_report"), (axes[1][1], "report_age_p99_s")):
        ax.plot([p["nodes"] for p in collapsed], [p[key] for p in collapsed], "rX", ms=12,
                label="collapsed: nodes declared dead")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_xlabel("simulated nodes")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("One Ember GCS and N simulated raylets (real gRPC on loopback; 2-core machine shared with other work)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="10,100,300,1000", help="node counts, comma-separated")
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring window per point")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--procs", type=int, default=4, help="simulator processes")
    ap.add_argument("--interval", type=float, default=REPORT_INTERVAL_S)
    ap.add_argument("--failover-nodes", type=int, default=1000, help="0: no failover point")
    ap.add_argument("--ttl", type=float, default=3.0, help="leader lease TTL on etcd")
    ap.add_argument("--out", default=None, help="write the points here (JSON)")
    ap.add_argument("--plot", default=None, help="plot the points into this PNG")
    ap.add_argument("--before", default=None, help="a JSON of an earlier run, plotted beside")
    ap.add_argument("--replot", default=None, metavar="JSON",
                    help="run nothing: plot (--plot) the points in this file (an earlier --out)")
    ap.add_argument("--floor", action="store_true",
                    help="also the largest node count calling GetClusterInfo instead of reporting (the per-RPC floor)")
    ap.add_argument("--profile", default=None,
                    help="py-spy the GCS at the largest node count; its collapsed stacks go here")
    # The simulator processes' own arguments.
    ap.add_argument("--sim", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--gcs", help=argparse.SUPPRESS)
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--call", default="report", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.sim:
        return _sim_main(a)
    if a.replot:  # no run: plot the points of earlier runs
        points = json.loads(pathlib.Path(a.replot).read_text())
        before = json.loads(pathlib.Path(a.before).read_text()) if a.before else None
        return plot(points, pathlib.Path(a.plot), before)
    token = auth.new_token()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="ember-gcs-scale-"))
    points = []
    counts = [int(x) for x in a.nodes.split(",") if x]
    for n in counts:
        profile = a.profile if n == max(counts) else None
        point = run_point(workdir, token, n, a.seconds, min(a.procs, n), a.interval, a.warmup, profile)
        print(json.dumps(point), flush=True)
        points.append(point)
    if a.floor:
        point = run_point(workdir, token, max(counts), a.seconds, a.procs, a.interval, a.warmup, call="info")
        print(json.dumps(point), flush=True)
        points.append(point)
    if a.failover_nodes:
        point = run_failover(workdir, token, a.failover_nodes, a.seconds, a.procs, a.interval, a.warmup, a.ttl)
        print(json.dumps(point), flush=True)
        points.append(point)
    if a.out:
        pathlib.Path(a.out).write_text(json.dumps(points, indent=1) + "\n")
    if a.plot:
        before = json.loads(pathlib.Path(a.before).read_text()) if a.before else None
        plot(points, pathlib.Path(a.plot), before)


if __name__ == "__main__":
    main()
