"""Each service as an operator runs it: alone, from its console script, with
flags; health-checked; token-guarded; robust to malformed requests; clean on
SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal
import subprocess
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ember_common import auth, ids, rpc
from ember.v1 import common_pb2, gcs_pb2, gcs_pb2_grpc, objectstore_pb2, objectstore_pb2_grpc, raylet_pb2, raylet_pb2_grpc
from tests.helpers import wait_until

TOKEN = "test-token-123"


def start(cmd: list[str], session: pathlib.Path, name: str, extra_env: dict | None = None) -> tuple[subprocess.Popen, int]:
    ready = session / f"{name}.ready"
    proc = subprocess.Popen(cmd + ["--session-dir", str(session), "--port", "0", "--ready-file", str(ready)],
                            env={**os.environ, auth.TOKEN_ENV: TOKEN, **(extra_env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited: {proc.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"{name} not ready"
        time.sleep(0.02)
    return proc, json.loads(ready.read_text())["port"]


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


@pytest.fixture
def session(tmp_path):
    (tmp_path / "logs").mkdir()
    return tmp_path


@pytest.fixture
def gcs(session):
    proc, port = start(["ember-gcs"], session, "gcs")
    yield f"127.0.0.1:{port}"
    if proc.poll() is None:
        stop(proc)


@pytest.fixture
def store(session):
    directory = pathlib.Path(f"/dev/shm/ember-test-{os.getpid()}-{session.name[-6:]}")
    proc, port = start(["ember-objectstore", "--directory", str(directory), "--capacity", str(1 << 20)], session, "store")
    yield f"127.0.0.1:{port}", directory, proc
    if proc.poll() is None:
        stop(proc)


def test_health_check_needs_no_token(gcs):
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(gcs))
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_wrong_or_missing_token_is_unauthenticated(gcs, token):
    stub = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, token))
    with pytest.raises(grpc.RpcError) as info:
        stub.KvPut(gcs_pb2.KvPutRequest(namespace="n", key=b"k", value=b"v"), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Nothing was written.
    good = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN))
    assert not good.KvGet(gcs_pb2.KvGetRequest(namespace="n", key=b"k"), timeout=5).found


def test_gcs_kv_jobs_nodes_and_bad_input(gcs):
    stub = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN))
    assert stub.KvPut(gcs_pb2.KvPutRequest(namespace="n", key=b"k", value=b"v")).added
    assert not stub.KvPut(gcs_pb2.KvPutRequest(namespace="n", key=b"k", value=b"w")).added
    assert stub.KvGet(gcs_pb2.KvGetRequest(namespace="n", key=b"k")).value == b"v"
    assert stub.KvKeys(gcs_pb2.KvKeysRequest(namespace="n")).keys == [b"k"]
    job1 = stub.AddJob(gcs_pb2.AddJobRequest(driver_pid=1)).job
    job2 = stub.AddJob(gcs_pb2.AddJobRequest(driver_pid=2)).job
    assert ids.job_id_to_int(job2.job_id) == ids.job_id_to_int(job1.job_id) + 1
    bad = [
        (stub.FinishJob, gcs_pb2.FinishJobRequest(job_id=b"toolong"), grpc.StatusCode.INVALID_ARGUMENT, "4 bytes"),
        (stub.FinishJob, gcs_pb2.FinishJobRequest(job_id=b"\0\0\0\x63"), grpc.StatusCode.NOT_FOUND, "does not exist"),
        (stub.RegisterNode, gcs_pb2.RegisterNodeRequest(), grpc.StatusCode.INVALID_ARGUMENT, "node_id"),
        (stub.ReportResources, gcs_pb2.ReportResourcesRequest(node_id=b"x" * 16), grpc.StatusCode.NOT_FOUND, "not registered"),
        (stub.ReportResources, gcs_pb2.ReportResourcesRequest(
            node_id=b"x" * 16, bundles=[gcs_pb2.HeldBundle(placement_group_id=b"short")]),
         grpc.StatusCode.INVALID_ARGUMENT, "placement_group_id"),
        (stub.KvPut, gcs_pb2.KvPutRequest(namespace="a\0b", key=b"k"), grpc.StatusCode.INVALID_ARGUMENT, "NUL"),
    ]
    for call, request, code, text in bad:
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=5)
        assert info.value.code() == code and text in info.value.details()
    # Still serving, and health timeouts declare silent nodes dead.
    node = gcs_pb2.NodeInfo(node_id=b"n" * 16, node_address="127.0.0.1", raylet_port=1)
    stub.RegisterNode(gcs_pb2.RegisterNodeRequest(node=node))
    assert [n.alive for n in stub.GetAllNodes(gcs_pb2.GetAllNodesRequest()).nodes] == [True]


def test_gcs_refuses_to_keep_oversized_fields(gcs):
    """The GCS's tables keep what they are given: a request over its limit is
    RESOURCE_EXHAUSTED naming the limit (1 MiB but for KV values and actor
    handles), and nothing of it is kept."""
    stub = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN))
    huge_node = gcs_pb2.NodeInfo(node_id=b"h" * 16, node_address="x" * (2 << 20), raylet_port=1)
    with pytest.raises(grpc.RpcError) as info:
        stub.RegisterNode(gcs_pb2.RegisterNodeRequest(node=huge_node), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "a RegisterNode request of" in info.value.details() and f"the limit is {1 << 20}" in info.value.details()
    assert not stub.GetAllNodes(gcs_pb2.GetAllNodesRequest(), timeout=5).nodes
    # An exported function may be large: KvPut takes values up to the KV's own limit.
    assert stub.KvPut(gcs_pb2.KvPutRequest(namespace="fn", key=b"big", value=bytes(3 << 20)), timeout=10).added
    actor = gcs_pb2.ActorInfo(actor_id=b"a" * 16, job_id=b"\0\0\0\1", class_name="C" * 5000)
    with pytest.raises(grpc.RpcError) as info:
        stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=actor), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "class name" in info.value.details()


def test_gcs_declares_silent_node_dead(session):
    proc, port = start(["ember-gcs", "--health-timeout", "0.5"], session, "gcs2")
    try:
        stub = gcs_pb2_grpc.GcsStub(rpc.channel(f"127.0.0.1:{port}", TOKEN))
        node = gcs_pb2.NodeInfo(node_id=b"n" * 16, node_address="127.0.0.1", raylet_port=1)
        stub.RegisterNode(gcs_pb2.RegisterNodeRequest(node=node))
        deadline = time.monotonic() + 5
        while stub.GetAllNodes(gcs_pb2.GetAllNodesRequest()).nodes[0].alive:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        (dead,) = stub.GetAllNodes(gcs_pb2.GetAllNodesRequest()).nodes
        assert "health check" in dead.death_reason
    finally:
        stop(proc)


def test_objectstore_lifecycle_errors_and_sigterm_cleanup(store, session):
    address, directory, proc = store
    stub = objectstore_pb2_grpc.ObjectStoreStub(rpc.channel(address, TOKEN))
    oid = ids.new_put_id()
    created = stub.Create(objectstore_pb2.CreateRequest(object_id=oid, size=11))
    with open(created.path, "r+b") as f:
        f.seek(created.offset)
        f.write(b"hello world")
    sealed = stub.Seal(objectstore_pb2.SealRequest(object_id=oid))
    assert (sealed.path, sealed.offset) == (created.path, created.offset)
    (entry,) = stub.Locate(objectstore_pb2.LocateRequest(object_ids=[oid])).entries
    assert entry.found and entry.size == 11 and entry.offset == created.offset
    with open(entry.path, "rb") as f:
        f.seek(entry.offset)
        assert f.read(entry.size) == b"hello world"
    for request, code in [
        (objectstore_pb2.CreateRequest(object_id=b"bad", size=1), grpc.StatusCode.INVALID_ARGUMENT),
        (objectstore_pb2.CreateRequest(object_id=ids.new_put_id(), size=10 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (objectstore_pb2.CreateRequest(object_id=oid, size=1), grpc.StatusCode.ALREADY_EXISTS),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            stub.Create(request, timeout=5)
        assert info.value.code() == code
    assert stub.Stats(objectstore_pb2.StatsRequest()).num_objects == 1
    assert list(stub.List(objectstore_pb2.ListRequest()).object_ids) == [oid]  # sealed 0 s or more ago
    assert not stub.List(objectstore_pb2.ListRequest(min_sealed_age_s=3600)).object_ids
    with pytest.raises(grpc.RpcError) as info:
        stub.List(objectstore_pb2.ListRequest(min_sealed_age_s=-1), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "negative" in info.value.details()
    assert stop(proc) == 0
    assert not directory.exists(), "SIGTERM must remove the shared-memory directory"
    assert not (session / "store.ready").exists()


def test_gcs_actor_directory_validates_and_reserves_names(gcs):
    stub = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN))
    info = gcs_pb2.ActorInfo(actor_id=b"a" * 16, job_id=b"\0\0\0\1", class_name="C", name="svc")
    assert stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=info), timeout=5).registered
    assert stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=info), timeout=5).registered  # idempotent retry
    rival = gcs_pb2.ActorInfo(actor_id=b"b" * 16, job_id=b"\0\0\0\1", class_name="C", name="svc")
    taken = stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=rival), timeout=5)
    assert not taken.registered and taken.existing.actor_id == b"a" * 16
    bad = [
        ("RegisterActor", gcs_pb2.RegisterActorRequest(actor=gcs_pb2.ActorInfo(actor_id=b"short", job_id=b"\0\0\0\1")),
         grpc.StatusCode.INVALID_ARGUMENT),
        ("UpdateActor", gcs_pb2.UpdateActorRequest(actor_id=b"c" * 16, state=gcs_pb2.ActorInfo.ALIVE),
         grpc.StatusCode.NOT_FOUND),
        ("UpdateActor", gcs_pb2.UpdateActorRequest(actor_id=b"a" * 16), grpc.StatusCode.INVALID_ARGUMENT),
        ("GetActor", gcs_pb2.GetActorRequest(), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for method, request, code in bad:
        with pytest.raises(grpc.RpcError) as err:
            getattr(stub, method)(request, timeout=5)
        assert err.value.code() == code, method
    # Death frees the name; a stale report cannot bring the actor back.
    dead = gcs_pb2.UpdateActorRequest(actor_id=b"a" * 16, state=gcs_pb2.ActorInfo.DEAD,
                                      death_cause=gcs_pb2.ActorInfo.KILLED, death_message="killed")
    stub.UpdateActor(dead, timeout=5)
    stub.UpdateActor(gcs_pb2.UpdateActorRequest(actor_id=b"a" * 16, state=gcs_pb2.ActorInfo.ALIVE), timeout=5)
    assert stub.GetActor(gcs_pb2.GetActorRequest(actor_id=b"a" * 16), timeout=5).actor.state == gcs_pb2.ActorInfo.DEAD
    assert not stub.GetActor(gcs_pb2.GetActorRequest(name="svc"), timeout=5).found
    assert stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=rival), timeout=5).registered


def test_gcs_publishes_actor_changes(gcs):
    stub = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN))
    first = gcs_pb2.ActorInfo(actor_id=b"w" * 16, job_id=b"\0\0\0\1", class_name="C")
    stub.RegisterActor(gcs_pb2.RegisterActorRequest(actor=first), timeout=5)
    watch = stub.WatchActors(gcs_pb2.WatchActorsRequest(), timeout=10)
    seen = [next(watch)]  # the snapshot: the actor as it is
    assert seen[0].actor_id == b"w" * 16 and seen[0].state == gcs_pb2.ActorInfo.PENDING_CREATION
    stub.UpdateActor(gcs_pb2.UpdateActorRequest(actor_id=b"w" * 16, state=gcs_pb2.ActorInfo.ALIVE, pid=7), timeout=5)
    stub.UpdateActor(gcs_pb2.UpdateActorRequest(actor_id=b"w" * 16, state=gcs_pb2.ActorInfo.DEAD,
                                                death_cause=gcs_pb2.ActorInfo.KILLED), timeout=5)
    seen += [next(watch), next(watch)]
    assert [(a.state, a.pid) for a in seen[1:]] == [(gcs_pb2.ActorInfo.ALIVE, 7), (gcs_pb2.ActorInfo.DEAD, 7)]
    watch.cancel()


def _raylet(session, gcs, store_address, directory):
    return start(["ember-raylet", "--node-id", "ab" * 16, "--gcs-address", gcs, "--store-address", store_address,
                  "--store-dir", str(directory), "--num-cpus", "1", "--socket", str(session / "r.sock")],
                 session, "raylet")


def test_raylet_alone_registers_runs_and_reaps_workers(session, gcs, store):
    address, directory, _ = store
    proc, port = _raylet(session, gcs, address, directory)
    try:
        gstub = gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN))
        (node,) = gstub.GetAllNodes(gcs_pb2.GetAllNodesRequest()).nodes
        assert node.alive and node.raylet_port == port and node.total.amounts["CPU"] == 1
        rstub = raylet_pb2_grpc.RayletStub(rpc.channel(f"127.0.0.1:{port}", TOKEN))
        deadline = time.monotonic() + 20
        while rstub.GetNodeStats(raylet_pb2.GetNodeStatsRequest()).num_workers < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Malformed stream: no register first -> INVALID_ARGUMENT, raylet keeps serving.
        call = rstub.Connect(iter([raylet_pb2.ClientBatch(subscribe=[b"x"])]))
        with pytest.raises(grpc.RpcError) as info:
            list(call)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Bad ids after a valid register -> INVALID_ARGUMENT for that stream only.
        reg = raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.DRIVER)
        call = rstub.Connect(iter([raylet_pb2.ClientBatch(register=reg),
                                   raylet_pb2.ClientBatch(puts=[common_pb2.ObjectValue(object_id=b"short")])]))
        with pytest.raises(grpc.RpcError) as info:
            list(call)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "object_id" in info.value.details()
        assert rstub.GetNodeStats(raylet_pb2.GetNodeStatsRequest()).num_workers >= 1
        workers = [p for p in __import__("psutil").Process(proc.pid).children()]
        assert workers
    finally:
        assert stop(proc) == 0
    assert all(not w.is_running() or w.status() == "zombie" for w in workers)
    assert not (session / "r.sock").exists()
    (node,) = gstub.GetAllNodes(gcs_pb2.GetAllNodesRequest()).nodes
    assert not node.alive and "stopped" in node.death_reason


def _touch_task(gcs: str, marker: pathlib.Path) -> raylet_pb2.TaskSpec:
    """A task that creates `marker` when it runs (its function put in the GCS's function table)."""
    from ember._private import serialization

    pickled = serialization.dumps_function(marker.touch)  # by reference to pathlib: any worker loads it
    function_id = hashlib.sha256(pickled).digest()
    gcs_pb2_grpc.GcsStub(rpc.channel(gcs, TOKEN)).KvPut(
        gcs_pb2.KvPutRequest(namespace="fn", key=function_id, value=pickled, overwrite=True), timeout=5)
    return raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), job_id=b"\0\0\0\1", function_id=function_id,
                               function_name="touch", args=serialization.serialize(((), {})).to_bytes(), num_returns=1)


def test_raylet_refuses_unauthenticated_submissions_before_running_anything(session, gcs, store):
    address, directory, _ = store
    proc, port = _raylet(session, gcs, address, directory)
    done = threading.Event()  # sessions stay open until then: a task taken would run

    def open_session(token: str, marker: pathlib.Path):
        def batches():
            yield raylet_pb2.ClientBatch(register=raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.DRIVER),
                                         submit=[_touch_task(gcs, marker)])
            done.wait(30)

        return raylet_pb2_grpc.RayletStub(rpc.channel(f"127.0.0.1:{port}", token)).Connect(batches())

    try:
        refused, ran = session / "refused-ran", session / "accepted-ran"
        with pytest.raises(grpc.RpcError) as info:
            list(open_session("wrong", refused))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        rstub = raylet_pb2_grpc.RayletStub(rpc.channel(f"127.0.0.1:{port}", TOKEN))
        stats = rstub.GetNodeStats(raylet_pb2.GetNodeStatsRequest())
        assert stats.num_queued_tasks == 0 and stats.num_running_tasks == 0
        # The same submission with the token runs; the raylet's one CPU runs tasks in order, so the
        # refused one, had it been taken, would have run by then.
        accepted = open_session(TOKEN, ran)
        wait_until(ran.exists, 20, "the accepted task to run")
        accepted.cancel()
        assert not refused.exists()
    finally:
        done.set()
        stop(proc)


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "little") + data


def _read_frames(sock) -> list[raylet_pb2.RayletBatch]:
    buf = b""
    while chunk := sock.recv(65536):
        buf += chunk
    out = []
    while buf:
        n = int.from_bytes(buf[:4], "little")
        out.append(raylet_pb2.RayletBatch.FromString(buf[4:4 + n]))
        buf = buf[4 + n:]
    return out


def test_raylet_local_socket_checks_token_and_frames(session, gcs, store):
    import socket

    address, directory, _ = store
    proc, port = _raylet(session, gcs, address, directory)
    path = str(session / "r.local.sock")
    reg = raylet_pb2.ClientBatch(register=raylet_pb2.RegisterClient(kind=raylet_pb2.RegisterClient.DRIVER))
    try:
        for first, expect in [(b"wrong", "UNAUTHENTICATED"), (TOKEN.encode(), "INVALID_ARGUMENT")]:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(_frame(first) + _frame(reg.SerializeToString()) + _frame(b"\xff\xff garbage"))
                s.shutdown(socket.SHUT_WR)
                frames = _read_frames(s)
            assert expect in frames[-1].error
        with socket.socket(socket.AF_UNIX) as s:  # the right token: a working session
            s.connect(path)
            s.sendall(_frame(TOKEN.encode()) + _frame(reg.SerializeToString()))
            s.sendall(_frame(raylet_pb2.ClientBatch(subscribe=[ids.new_put_id()]).SerializeToString()))
            s.shutdown(socket.SHUT_WR)
            frames = _read_frames(s)
        assert frames[0].registered.node_id == bytes.fromhex("ab" * 16)
        assert any(v.is_error for f in frames for v in f.ready)  # unknown object: ObjectLostError
        rstub = raylet_pb2_grpc.RayletStub(rpc.channel(f"127.0.0.1:{port}", TOKEN))
        assert rstub.GetNodeStats(raylet_pb2.GetNodeStatsRequest()).num_queued_tasks == 0
    finally:
        stop(proc)


def test_gcs_serves_metrics_on_its_host_and_only_at_metrics(session, gcs):
    import urllib.error
    import urllib.request

    ready = json.loads((session / "gcs.ready").read_text())
    metrics = f"http://127.0.0.1:{ready['metrics_port']}"
    body = urllib.request.urlopen(f"{metrics}/metrics", timeout=10).read().decode()
    assert 'ember_gcs_leader{storage="memory"} 1.0' in body
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(f"{metrics}/metricz", timeout=10)
    assert wrong.value.code == 404
    # Its discovery file lists its own endpoint (no node has joined).
    (group,) = json.loads((session / "prometheus_sd.json").read_text())
    assert group["targets"] == [f"127.0.0.1:{ready['metrics_port']}"] and group["labels"]["ember_service"] == "gcs"


def test_metrics_can_be_switched_off(session):
    proc, _ = start(["ember-gcs"], session, "gcs", extra_env={"EMBER_METRICS_ENABLED": "0"})
    try:
        assert json.loads((session / "gcs.ready").read_text())["metrics_port"] == 0
        assert not (session / "prometheus_sd.json").exists() or \
            all(g["labels"]["ember_service"] != "gcs" for g in json.loads((session / "prometheus_sd.json").read_text()))
    finally:
        stop(proc)
