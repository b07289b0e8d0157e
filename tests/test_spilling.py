"""A store smaller than the data: objects spill to disk and come back
intact, pulled copies are evicted and pulled again, and a put that can never
fit fails with the sizes. Real processes, a 64 MiB store per node."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from typing import Iterator

import numpy as np
import pytest

import ember
from ember_common import ids, rpc
from ember.v1 import objectstore_pb2, objectstore_pb2_grpc
from tests.conftest import multinode_cluster

CAPACITY = 64 << 20
MB16 = 16 << 20


@pytest.fixture(scope="module")
def cluster():
    # A 1 s grace for objects the raylet never heard of: the spilling and
    # pulling below must not lose a single object to the sweep.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBER_ORPHAN_GRACE_S", "1")
        with multinode_cluster({"num_cpus": 1, "object_store_memory": CAPACITY},
                               {"num_cpus": 1, "resources": {"far": 1}, "object_store_memory": CAPACITY}) as (c, (far,)):
            yield c, far


@contextlib.contextmanager
def _store(node) -> Iterator[objectstore_pb2_grpc.ObjectStoreStub]:
    short = node.node_id.hex()[:8]
    channel = rpc.channel(f"unix:{node.session_dir / f'store-{short}.sock'}", _TOKEN[0])
    try:
        yield objectstore_pb2_grpc.ObjectStoreStub(channel)
    finally:
        channel.close()


def _stats(node) -> objectstore_pb2.StatsReply:
    with _store(node) as store:
        return store.Stats(objectstore_pb2.StatsRequest(), timeout=10)


_TOKEN: list[str] = []  # the cluster's token, for asking stores directly


def _block(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, size=MB16 // 8, dtype=np.int64)


def test_more_data_than_fits_spills_and_reads_back_intact(cluster):
    c, _far = cluster
    _TOKEN[:] = [c.token]
    refs = [ember.put(_block(i)) for i in range(10)]  # 160 MiB into 64 MiB
    stats = _stats(c.head_node)
    assert stats.num_spilled >= 6 and stats.used <= CAPACITY
    spill_dir = stats.spill_directory
    assert len(os.listdir(spill_dir)) == stats.num_spilled
    for i, ref in enumerate(refs):  # each comes back from disk as it is read
        assert np.array_equal(ember.get(ref), _block(i)), i
        gc.collect()  # drop our mapping, so it may be spilled again for the next

    @ember.remote
    def checksum(a: np.ndarray) -> int:
        return int(a.sum(dtype=np.uint64))

    # Spilled arguments, restored for the worker that runs the task.
    assert ember.get([checksum.remote(r) for r in refs]) == [int(_block(i).sum(dtype=np.uint64)) for i in range(10)]
    assert _stats(c.head_node).restored_bytes_total >= 6 * MB16
    del refs, ref
    gc.collect()
    deadline = time.monotonic() + 10
    while os.listdir(spill_dir) or _stats(c.head_node).num_objects:
        assert time.monotonic() < deadline, (os.listdir(spill_dir), _stats(c.head_node))
        time.sleep(0.1)


def test_spilled_objects_travel_and_copies_are_evicted(cluster):
    c, far = cluster
    _TOKEN[:] = [c.token]

    @ember.remote(resources={"far": 1})
    def make(seed: int) -> np.ndarray:
        return _block(seed)

    refs = [make.remote(100 + i) for i in range(6)]  # 96 MiB made on the far node: some spill there
    ember.wait(refs, num_returns=6, fetch_local=False)
    assert _stats(far).num_spilled >= 1
    # Pulled to the head one by one (read from the far node's disk if spilled
    # there); the head evicts older copies to make room for newer ones.
    for i, ref in enumerate(refs):
        assert np.array_equal(ember.get(ref), _block(100 + i)), i
        gc.collect()
    stats = _stats(c.head_node)
    assert stats.num_evicted >= 1 and stats.num_spilled == 0 and stats.used <= CAPACITY
    # An evicted copy read again is pulled again.
    assert np.array_equal(ember.get(refs[0]), _block(100))


def test_a_put_that_can_never_fit_says_the_sizes(cluster):
    with pytest.raises(ember.exceptions.ObjectStoreFullError, match=str(CAPACITY)):
        ember.put(np.zeros(CAPACITY + 1, dtype=np.uint8))


def test_ember_memory_lists_objects_with_their_place_and_holders(cluster):
    import json
    import subprocess
    import sys

    c, _far = cluster
    refs = [ember.put(_block(200 + i)) for i in range(6)]  # some spilled
    small = ember.put("tiny")
    out = subprocess.run([sys.executable, "-m", "ember._private.cli", "memory", "--json", "--address", c.address],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "EMBER_AUTH_TOKEN": c.token})
    assert out.returncode == 0, out.stderr
    rows = {r["object_id"]: r for r in map(json.loads, out.stdout.splitlines())}
    mine = [rows[r.hex()] for r in refs]
    assert all(r["size"] > MB16 and r["state"] == "READY" and r["node"] == c.head_node.node_id.hex() for r in mine)
    assert any("(spilled)" in r["where"] for r in mine) and any("(spilled)" not in r["where"] for r in mine)
    assert rows[small.hex()]["where"] == "inline"
    assert all(h.startswith("driver pid ") for r in mine for h in r["referenced_by"])
    text = subprocess.run([sys.executable, "-m", "ember._private.cli", "memory", "--address", c.address],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "EMBER_AUTH_TOKEN": c.token})
    assert "spilled" in text.stdout and "REFERENCED BY" in text.stdout


def test_an_object_nobody_was_told_about_is_deleted_after_the_grace(cluster):
    """A writer that dies between sealing an object and telling its raylet
    (a driver mid-put, a direct call's caller) leaves a file nobody owns:
    here one is written straight into the store and never told. The raylet
    deletes it after the grace (1 s here); what it knows stays."""
    c, _far = cluster
    _TOKEN[:] = [c.token]
    kept = ember.put(_block(300))
    orphan = ids.new_put_id()
    with _store(c.head_node) as store:
        created = store.Create(objectstore_pb2.CreateRequest(object_id=orphan, size=4096), timeout=10)
        with open(created.path, "r+b") as f:
            f.seek(created.offset)
            f.write(b"x" * 4096)
        store.Seal(objectstore_pb2.SealRequest(object_id=orphan), timeout=10)
        found = lambda: store.Locate(objectstore_pb2.LocateRequest(object_ids=[orphan, kept.binary()]),  # noqa: E731
                                     timeout=10).entries
        deadline = time.monotonic() + 15
        while found()[0].found and time.monotonic() < deadline:
            time.sleep(0.2)
        orphan_entry, kept_entry = found()
    assert not orphan_entry.found and not orphan_entry.spilled, "the orphan was never deleted"
    assert kept_entry.found or kept_entry.spilled
    assert np.array_equal(ember.get(kept), _block(300))


def test_a_direct_call_result_whose_caller_died_is_deleted(cluster):
    """A stored result of a direct actor call is the caller's to pass on to
    its raylet; a caller killed while the call runs leaves it to the sweep."""
    import signal
    import subprocess
    import sys
    import textwrap

    c, far = cluster
    _TOKEN[:] = [c.token]
    code = textwrap.dedent(f"""
        import time, numpy as np, ember
        from ember._private import runtime
        ember.init(address={c.address!r})
        @ember.remote
        class Maker:
            def node(self): return ember.get_runtime_context().get_node_id()
            def make(self):
                time.sleep(2)
                return np.ones(1 << 20)  # 8 MiB: stored, not inline
        m = Maker.options(name="orphan-maker", lifetime="detached").remote()
        ember.get(m.node.remote()); node = ember.get(m.node.remote())
        direct = runtime.client().direct_worker(m._actor_id) is not None
        m.make.remote()
        print(node, direct, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "EMBER_AUTH_TOKEN": c.token})
    try:
        node_id, direct = proc.stdout.readline().split()
        node = next(n for n in (c.head_node, far) if n.node_id.hex() == node_id)
        before = _stats(node).num_objects
        proc.send_signal(signal.SIGKILL)  # while `make` sleeps
        proc.wait(timeout=10)
        assert direct == "True", "the call did not go direct"
        deadline = time.monotonic() + 20
        seen = before
        while time.monotonic() < deadline:
            now = _stats(node).num_objects
            seen = max(seen, now)
            if seen > before and now == before:
                break
            time.sleep(0.1)
        assert seen > before, "the result was never stored"
        assert _stats(node).num_objects == before, "the caller's stored result stayed in the store"
    finally:
        proc.kill()
        proc.wait()
        with contextlib.suppress(ValueError):
            ember.kill(ember.get_actor("orphan-maker"))
