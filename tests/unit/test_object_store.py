"""The store behind the ObjectStore API, without sockets: shared memory and
the spill directory together (Create makes room, Locate says where an
object is, Restore brings one back, Delete and List see both places)."""

import asyncio
import os
import time

import pytest

from ember_common import ids
from ember_common.errors import AlreadyExists, NotFound, ResourceExhausted
from ember.v1 import object_leases_pb2

from ember_common.errors import FailedPrecondition, InvalidArgument
from ember_objectstore.reader_leases import ReaderLeases
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller
from ember_objectstore.store import Location, ObjectStore

PINNED, LOST = object_leases_pb2.PinReply.Status.PINNED, object_leases_pb2.PinReply.Status.LOST

CAPACITY = 1000


@pytest.fixture
def store(tmp_path):
    shm = ShmStore(tmp_path / "shm", CAPACITY, pool_fraction=0)
    spiller = Spiller(shm, tmp_path / "spill")
    yield ObjectStore(shm, spiller, ReaderLeases(shm, tmp_path / "shm" / "leases"))
    spiller.close()
    shm.close()


def _put(store, size, byte):
    oid = ids.new_put_id()
    entry = asyncio.run(store.create(oid, size))
    store.shm.view(entry)[:] = bytes([byte]) * size
    store.seal(oid)
    return oid


def _read(store, where):
    with open(where.path, "rb") as f:
        f.seek(where.offset)
        return f.read(where.size)


class Reader:
    """A reader process's lease, held by this test process (a child holds
    the lock so that killing it is a reader dying)."""

    def __init__(self, store):
        import subprocess
        import sys

        self.lease_id = os.urandom(16)
        path = store.leases.directory / self.lease_id.hex()
        self.proc = subprocess.Popen([sys.executable, "-c", (
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(path) + '.tmp'!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            f"os.rename({str(path) + '.tmp'!r}, {str(path)!r})\n"
            "time.sleep(600)\n")])
        deadline = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < deadline and self.proc.poll() is None
            time.sleep(0.01)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def test_create_spills_the_oldest_object_and_locate_finds_it_on_disk(store):
    old, new = _put(store, 600, 1), _put(store, 600, 2)
    where_old, where_new = store.locate(old), store.locate(new)
    assert where_new.found and where_new.path == str(store.shm.arena_path) and where_new.size == 600
    assert _read(store, where_new) == b"\x02" * 600
    assert not where_old.found and where_old.spilled and where_old.size == 600 and where_old.path == ""
    assert (store.spiller.directory / old.hex()).read_bytes() == b"\x01" * 600
    stats = store.stats()
    assert (stats.used, stats.num_objects, stats.num_spilled, stats.spilled_bytes) == (600, 1, 1, 600)


def test_an_object_nowhere_is_not_found_nor_spilled(store):
    missing = ids.new_put_id()
    assert store.locate(missing) == Location(object_id=missing, found=False, path="", offset=0, size=0, spilled=False)


def test_create_refuses_an_object_that_exists_in_memory_or_on_disk(store):
    spilled, kept = _put(store, 600, 1), _put(store, 600, 2)
    with pytest.raises(AlreadyExists, match="spilled to disk"):
        asyncio.run(store.create(spilled, 10))
    with pytest.raises(AlreadyExists):
        asyncio.run(store.create(kept, 10))
    assert store.locate(spilled).spilled and store.stats().used == 600  # nothing moved


def test_an_object_a_reader_pins_is_never_spilled_and_a_dead_readers_pins_go(store):
    pinned = _put(store, 600, 1)
    reader = Reader(store)
    try:
        (entry,) = asyncio.run(store.pin(reader.lease_id, [pinned]))
        assert entry.status == PINNED and entry.size == 600
        assert asyncio.run(store.pin(reader.lease_id, [pinned]))[0].status == PINNED  # idempotent
        with pytest.raises(ResourceExhausted, match="full"):
            asyncio.run(store.create(ids.new_put_id(), 600))
        assert store.locate(pinned).found and store.stats().num_pinned == 1
        assert store.leases.reap() == 0  # alive
    finally:
        reader.kill()
    asyncio.run(store.create(ids.new_put_id(), 600))  # the dead reader's pin went: spilled now
    assert store.locate(pinned).spilled and store.stats().num_readers == 0
    assert os.listdir(store.leases.directory) == []


def test_unpin_lets_the_object_go_and_deleting_a_pinned_object_waits_for_it(store):
    reader = Reader(store)
    try:
        first = _put(store, 600, 1)
        asyncio.run(store.pin(reader.lease_id, [first]))
        assert store.unpin(reader.lease_id, [first, ids.new_put_id()]) == 1
        assert store.unpin(reader.lease_id, [first]) == 0  # idempotent
        asyncio.run(store.pin(reader.lease_id, [first]))
        store.delete([first])
        assert store.stats().used == 600  # still read
        store.unpin(reader.lease_id, [first])
        assert store.stats().used == 0
    finally:
        reader.kill()


def test_pin_restores_a_spilled_object_and_says_which_are_lost(store):
    reader = Reader(store)
    try:
        old, _ = _put(store, 600, 1), _put(store, 600, 2)
        assert store.locate(old).spilled
        lost = ids.new_put_id()
        restored, gone = asyncio.run(store.pin(reader.lease_id, [old, lost]))
        assert restored.status == PINNED and gone.status == LOST and "not in this store" in gone.reason
        assert store.locate(old).found and store.locate(old).offset == restored.offset
    finally:
        reader.kill()


def test_pin_refuses_bad_leases_and_ids(store):
    with pytest.raises(InvalidArgument, match="16 bytes"):
        asyncio.run(store.pin(b"short", []))
    with pytest.raises(FailedPrecondition, match="no lease file"):
        asyncio.run(store.pin(os.urandom(16), [ids.new_put_id()]))
    reader = Reader(store)
    try:
        with pytest.raises(InvalidArgument, match="20 bytes"):
            asyncio.run(store.pin(reader.lease_id, [b"bad"]))
    finally:
        reader.kill()


def test_restore_brings_a_spilled_object_back_intact(store):
    old, _ = _put(store, 600, 1), _put(store, 600, 2)
    entry = asyncio.run(store.restore(old))  # spills the other one to make room
    where = store.locate(old)
    assert where.found and not where.spilled and where.offset == entry.offset
    assert _read(store, where) == b"\x01" * 600
    stats = store.stats()
    assert stats.num_spilled == 1 and stats.restored_bytes_total == 600
    assert not (store.spiller.directory / old.hex()).exists()
    with pytest.raises(NotFound):
        asyncio.run(store.restore(ids.new_put_id()))


def test_an_evicted_copy_is_neither_found_nor_spilled(store):
    copy = _put(store, 600, 1)
    store.spiller.sources[copy] = "10.0.0.2:7000"  # pulled from there (what the Puller records)
    _put(store, 600, 2)
    where = store.locate(copy)
    assert not where.found and not where.spilled
    assert store.stats().num_evicted == 1 and store.stats().num_spilled == 0


def test_delete_and_list_see_objects_wherever_they_are(store):
    spilled, kept = _put(store, 600, 1), _put(store, 600, 2)
    writing = ids.new_put_id()
    asyncio.run(store.create(writing, 10))
    assert sorted(store.older_than(0, 3600)) == sorted([kept, spilled])
    assert sorted(store.older_than(0, 0)) == sorted([kept, spilled, writing])
    assert store.older_than(3600, 3600) == []
    assert store.delete([spilled, kept, ids.new_put_id()]) == 2
    assert not store.locate(spilled).spilled and not store.locate(kept).found
    assert os.listdir(store.spiller.directory) == []
    store.abort(writing)
    assert store.stats().used == 0 and store.stats().num_unsealed == 0


def test_a_hundred_thousand_objects_alive_pinned_and_read_by_one_process(tmp_path):
    """The arena scales past descriptors and mappings: 100,000 objects held
    by one reader's lease, and read by another process through one mapping
    of the arena (its descriptor closed) with no descriptor per object."""
    import json
    import subprocess
    import sys

    n, size = 100_000, 2048
    shm = ShmStore(tmp_path / "shm", n * size * 2)
    store = ObjectStore(shm, Spiller(shm, tmp_path / "spill"), ReaderLeases(shm, tmp_path / "shm" / "leases"))
    object_ids = [ids.new_put_id() for _ in range(n)]
    for object_id in object_ids:
        entry = shm.create(object_id, size)
        shm.view(entry)[:20] = object_id
        shm.seal(object_id)
    reader = Reader(store)
    try:
        entries = asyncio.run(store.pin(reader.lease_id, object_ids))
        assert all(e.status == PINNED for e in entries) and store.stats().num_pinned == n
        ranges = [(e.offset, e.size) for e in entries]
        (tmp_path / "ranges.json").write_text(json.dumps([str(shm.arena_path), ranges]))
        done = subprocess.run([sys.executable, "-c", (
            "import json, mmap, os, sys\n"
            "path, ranges = json.load(open(sys.argv[1]))\n"
            "fd = os.open(path, os.O_RDONLY)\n"
            "arena = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)\n"
            "os.close(fd)\n"
            "views = [memoryview(arena)[o:o + s] for o, s in ranges]\n"
            "sys.stdout.buffer.write(b''.join(bytes(v[:20]) for v in views))\n"
            "print(len(os.listdir('/proc/self/fd')), file=sys.stderr)\n"), str(tmp_path / "ranges.json")],
            capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"".join(object_ids)  # every object, each its own bytes
        assert int(done.stderr.split()[-1]) <= 8  # stdin/out/err and the like: none per object
    finally:
        reader.kill()
    assert store.leases.reap() == 1 and store.stats().num_pinned == 0
    shm.close()
