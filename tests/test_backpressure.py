"""Work that asks for more than the node has slows down or fails with a
clear error, and no service dies: the raylet's memory monitor kills a
worker (OutOfMemoryError) before the kernel's OOM killer picks a service.
Real processes; the threshold is set a little above what is in use now, so
a task that keeps allocating crosses it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import time

import psutil
import pytest

import ember
from ember.exceptions import ObjectStoreFullError, OutOfMemoryError
from ember.v1 import objectstore_pb2, objectstore_pb2_grpc, raylet_pb2
from ember_common import rpc
from ember_raylet.memory_monitor import read_memory_usage
from tests.conftest import wait_gone
from tests.helpers import driver_output, raylet_call, wait_until

GIB = 2**30
HOG_STEP = 64 << 20
HOG_LIMIT = 8 * GIB  # far above the margin: reaching it means no one stopped the hog


@pytest.fixture
def low_memory_cluster(monkeypatch):
    """A cluster whose memory threshold is 1.5 GiB above today's use."""
    usage = read_memory_usage()
    if usage.total - usage.used < HOG_LIMIT + 2 * GIB:
        pytest.skip("the machine has too little free memory for the hog to cross its margin safely")
    monkeypatch.setenv("EMBER_MEMORY_USAGE_THRESHOLD", f"{(usage.used + 1.5 * GIB) / usage.total:.4f}")
    monkeypatch.setenv("EMBER_MEMORY_MONITOR_REFRESH_MS", "100")
    info = ember.init(num_cpus=2, object_store_memory=64 << 20)
    yield info
    ember.shutdown()
    assert not wait_gone(info["session_dir"])


def allocate_until_stopped() -> int:
    """Allocates (and touches) memory in steps until it is stopped."""
    import numpy as np

    held = []
    while len(held) * HOG_STEP < HOG_LIMIT:
        held.append(np.ones(HOG_STEP, dtype=np.uint8))
        time.sleep(0.05)
    return len(held)


hog = ember.remote(allocate_until_stopped)


def _services(session_dir: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if session_dir in cmd and any(s in cmd for s in ("ember_gcs", "ember_raylet", "ember_objectstore")):
            out.append(p)
    return out


def test_a_task_over_the_memory_threshold_fails_with_out_of_memory_and_services_live(low_memory_cluster):
    services = _services(low_memory_cluster["session_dir"])
    assert len(services) == 3
    with pytest.raises(OutOfMemoryError) as info:
        ember.get(hog.options(max_retries=0).remote(), timeout=120)
    message = str(info.value)
    assert "memory_usage_threshold" in message and "allocate_until_stopped" in message and "GiB in use" in message
    assert all(p.is_running() for p in services)
    assert ember.get(ember.remote(lambda: "still serving").remote(), timeout=30) == "still serving"


def test_a_retriable_task_is_retried_before_it_fails_with_out_of_memory(low_memory_cluster):
    @ember.remote(max_retries=1)
    def counted_hog(marker: str) -> int:
        with open(marker, "a") as f:
            f.write("started\n")
        return allocate_until_stopped()

    marker = os.path.join(low_memory_cluster["session_dir"], "hog-starts")
    with pytest.raises(OutOfMemoryError):
        ember.get(counted_hog.remote(marker), timeout=120)
    started = open(marker).read().split()
    assert started == ["started", "started"]  # the first run and its one retry


@pytest.fixture
def small_queue_cluster(monkeypatch):
    """A raylet that holds its drivers once it keeps 200 tasks."""
    monkeypatch.setenv("EMBER_MAX_QUEUED_TASKS", "200")
    info = ember.init(num_cpus=1)
    yield info
    ember.shutdown()
    assert not wait_gone(info["session_dir"])


@ember.remote
def slow_square(x: int) -> int:
    time.sleep(0.002)
    return x * x


def test_a_driver_submitting_faster_than_the_node_runs_keeps_what_the_raylet_has_no_room_for(small_queue_cluster):
    from ember._private import runtime

    outbox = runtime.client()._outbox
    stats = raylet_pb2.GetNodeStatsRequest()
    token = (pathlib.Path(small_queue_cluster["session_dir"]) / "token").read_text().strip()
    node = ember.get_runtime_context().get_node_id()
    with driver_output() as output:
        refs = [slow_square.remote(i) for i in range(300)]
        wait_until(lambda: outbox.submit_allowance is not None, timeout=30)  # held: the raylet keeps 200+
        refs += [slow_square.remote(i) for i in range(300, 3000)]  # 5 s of work, submitted in a fraction
        # The rest waits in the driver (serialized), not in the raylet.
        assert len(outbox.kept) > 1000, len(outbox.kept)
        peak = 0
        while outbox.kept:
            reply = raylet_call(token, node, "GetNodeStats", stats)
            peak = max(peak, reply.num_queued_tasks + reply.num_running_tasks)
            time.sleep(0.01)
        # Never more than what came before the hold reached the driver
        # (at most the first 300) plus a share of the room (at most 200).
        assert peak <= 500, peak
        assert ember.get(refs, timeout=120) == [i * i for i in range(3000)]
    assert "max_queued_tasks" not in output.err  # (.remote() never waited: nothing to warn of)


@contextlib.contextmanager
def _small_file_system(path: pathlib.Path, size: str):
    """A tmpfs of `size` at `path`: a disk that fills (root only)."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _store_stats(session_dir: str) -> objectstore_pb2.StatsReply:
    """The object store's Stats, asked on its socket in the session."""
    token = (pathlib.Path(session_dir) / "token").read_text().strip()
    (socket,) = pathlib.Path(session_dir).glob("store-*.sock")
    channel = rpc.channel(f"unix:{socket}", token)
    try:
        return objectstore_pb2_grpc.ObjectStoreStub(channel).Stats(objectstore_pb2.StatsRequest(), timeout=10)
    finally:
        channel.close()


def test_puts_past_store_and_disk_fail_with_object_store_full_and_lose_nothing(tmp_path, monkeypatch):
    import numpy as np

    with _small_file_system(tmp_path / "spill", "40m") as spill:
        monkeypatch.setenv("EMBER_OBJECT_SPILLING_DIRECTORY", str(spill))
        info = ember.init(num_cpus=1, object_store_memory=64 << 20)
        try:
            refs = []
            with pytest.raises(ObjectStoreFullError) as error:
                for i in range(8):
                    refs.append(ember.put(np.full(16 << 20, i, dtype=np.uint8)))
            message = str(error.value)
            assert "nothing more can be spilled" in message and "local_fs_capacity_threshold of 95%" in message
            assert len(refs) == 5, message  # 3 in memory (each is 16 MiB and a header), 2 on disk
            assert all(p.is_running() for p in _services(info["session_dir"]))
            # Nothing was lost: with one object freed (room to bring the
            # spilled ones back one by one), every other one reads back whole.
            del refs[-1]
            wait_until(lambda: _store_stats(info["session_dir"]).used < 3 << 24, what="the freed object gone")
            for i, ref in enumerate(refs):
                value = ember.get(ref, timeout=60)
                assert value[0] == i and value[-1] == i
                del value
        finally:
            ember.shutdown()
        assert not wait_gone(info["session_dir"])


def test_small_values_past_max_inline_bytes_go_to_the_store_then_back_inline(monkeypatch):
    monkeypatch.setenv("EMBER_MAX_INLINE_BYTES", str(1 << 20))
    info = ember.init(num_cpus=1)
    try:
        session_dir = info["session_dir"]
        small = [ember.put(bytes([i % 256]) * 10_000) for i in range(90)]  # 900 KB inline: under 1 MiB
        assert _store_stats(session_dir).num_objects == 0
        more = [ember.put(bytes([i % 256]) * 10_000) for i in range(90, 400)]
        # Past 1 MiB the raylet asks for the store; the puts after its answer go there.
        wait_until(lambda: _store_stats(session_dir).num_objects > 0, what="small values in the store")
        values = ember.get(small + more, timeout=60)
        assert all(v == bytes([i % 256]) * 10_000 for i, v in enumerate(values))
        del small, more, values
        # Under 90% again: small values are inline once more.
        wait_until(lambda: _store_stats(session_dir).num_objects == 0, what="the stored small values freed")
        ember.get(ember.remote(lambda: 1).remote(), timeout=30)  # (a round trip: the release has come)
        again = [ember.put(b"y" * 10_000) for _ in range(10)]
        assert ember.get(again, timeout=30) == [b"y" * 10_000] * 10
        assert _store_stats(session_dir).num_objects == 0
    finally:
        ember.shutdown()
    assert not wait_gone(info["session_dir"])
