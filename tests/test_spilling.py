"""A store smaller than the data: objects spill to disk and come back
intact, pulled copies are evicted and pulled again, and a put that can never
fit fails with the sizes. Real processes, a 64 MiB store per node."""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

import ember
from ember._private import rpc
from ember.v1 import objectstore_pb2, objectstore_pb2_grpc
from tests.conftest import multinode_cluster

CAPACITY = 64 << 20
MB16 = 16 << 20


@pytest.fixture(scope="module")
def cluster():
    with multinode_cluster({"num_cpus": 1, "object_store_memory": CAPACITY},
                           {"num_cpus": 1, "resources": {"far": 1}, "object_store_memory": CAPACITY}) as (c, (far,)):
        yield c, far


def _stats(node) -> objectstore_pb2.StatsReply:
    short = node.node_id.hex()[:8]
    channel = rpc.channel(f"unix:{node.session_dir / f'store-{short}.sock'}", _TOKEN[0])
    try:
        return objectstore_pb2_grpc.ObjectStoreStub(channel).Stats(objectstore_pb2.StatsRequest(), timeout=10)
    finally:
        channel.close()


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
