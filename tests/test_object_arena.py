"""Objects are not file descriptors (issue 15): the store keeps every
object in one shared-memory arena, so one process holds and reads any
number of them zero-copy with a bounded number of descriptors and
mappings; what a reader pins is released when it dies. A real cluster
whose values over 1 KiB go to the store. (100,000 objects alive: in
tests/unit/test_object_store.py, straight on the store's logic: through
the cluster it would take minutes of RPCs on this machine.)"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import ember
from ember._private import runtime
from ember.v1 import objectstore_pb2
from tests.conftest import shm_files, wait_gone
from tests.helpers import wait_until

N_GET = 10_000


@pytest.fixture(scope="module")
def small_values_cluster():
    old = os.environ.get("EMBER_INLINE_THRESHOLD")
    os.environ["EMBER_INLINE_THRESHOLD"] = "1024"
    try:
        info = ember.init(num_cpus=1, object_store_memory=1 << 30)
    finally:
        if old is None:
            os.environ.pop("EMBER_INLINE_THRESHOLD")
        else:
            os.environ["EMBER_INLINE_THRESHOLD"] = old
    yield info
    ember.shutdown()
    assert not wait_gone(info["session_dir"])
    assert not shm_files(f"ember-{os.path.basename(info['session_dir'])[-6:]}"), "shared memory left"


def _stats():
    return runtime.client().store.Stats(objectstore_pb2.StatsRequest(), timeout=30)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _store_mappings(store_dir: str) -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if store_dir in line)


def test_ten_thousand_live_objects_in_one_get_with_bounded_descriptors(small_values_cluster):
    refs = [ember.put(np.full(512, i, dtype=np.int64)) for i in range(N_GET)]  # out of band: zero-copy
    assert _stats().num_objects >= N_GET  # each one in the store, none inline
    fds = _fds()
    values = ember.get(refs)
    assert _fds() <= fds + 4, "a descriptor per object"
    assert _store_mappings(runtime.client().info.object_store_dir) <= 2, "a mapping per object"
    assert all(v[0] == i and v[-1] == i and not v.flags.writeable for i, v in enumerate(values))
    assert _stats().num_pinned >= N_GET  # all held while the values live
    del values, refs


@ember.remote
class Holder:
    def hold(self, refs):
        self.values = ember.get(refs)
        return os.getpid()


def test_a_reader_that_dies_releases_what_it_held(small_values_cluster):
    refs = [ember.put(np.full(512, i, dtype=np.int64)) for i in range(200)]
    wait_until(lambda: _stats().num_pinned == 0, 10, "earlier pins released")
    holder = Holder.remote()
    pid = ember.get(holder.hold.remote(refs))  # (a list: the refs reach the actor unresolved)
    assert _stats().num_pinned == 200 and _stats().num_readers >= 1
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _stats().num_pinned == 0, 15, "the dead reader's pins released")
    values = ember.get(refs)  # the objects themselves are the driver's, still there
    assert [int(v[0]) for v in values] == list(range(200))


def test_a_reader_letting_go_unpins(small_values_cluster):
    refs = [ember.put(np.full(512, i, dtype=np.int64)) for i in range(50)]
    values = ember.get(refs)
    runtime.client()._store_io.reader_maps.clear()
    assert _stats().num_pinned >= 50
    del values
    wait_until(lambda: _stats().num_pinned == 0, 10, "the pins released once the values are gone")
