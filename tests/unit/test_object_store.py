"""The store behind the ObjectStore API, without sockets: shared memory and
the spill directory together (Create makes room, Locate says where an
object is, Restore brings one back, Delete and List see both places)."""

import asyncio
import fcntl
import os

import pytest

from ember_common import ids
from ember_common.errors import AlreadyExists, NotFound, ResourceExhausted
from ember_objectstore.shm_store import ShmStore
from ember_objectstore.spilling import Spiller
from ember_objectstore.store import Location, ObjectStore

CAPACITY = 1000


@pytest.fixture
def store(tmp_path):
    shm = ShmStore(tmp_path / "shm", CAPACITY, pool_fraction=0)
    spiller = Spiller(shm, tmp_path / "spill")
    yield ObjectStore(shm, spiller)
    spiller.close()
    shm.close()


def _put(store, size, byte):
    oid = ids.new_put_id()
    path = asyncio.run(store.create(oid, size))
    with open(path, "r+b") as f:
        f.write(bytes([byte]) * size)
    store.seal(oid)
    return oid


def test_create_spills_the_oldest_object_and_locate_finds_it_on_disk(store):
    old, new = _put(store, 600, 1), _put(store, 600, 2)
    where_old, where_new = store.locate(old), store.locate(new)
    assert where_new.found and where_new.path.endswith(new.hex()) and where_new.size == 600
    assert not where_old.found and where_old.spilled and where_old.size == 600 and where_old.path == ""
    assert (store.spiller.directory / old.hex()).read_bytes() == b"\x01" * 600
    stats = store.stats()
    assert (stats.used, stats.num_objects, stats.num_spilled, stats.spilled_bytes) == (600, 1, 1, 600)


def test_an_object_nowhere_is_not_found_nor_spilled(store):
    missing = ids.new_put_id()
    assert store.locate(missing) == Location(object_id=missing, found=False, path="", size=0, spilled=False)


def test_create_refuses_an_object_that_exists_in_memory_or_on_disk(store):
    spilled, kept = _put(store, 600, 1), _put(store, 600, 2)
    with pytest.raises(AlreadyExists, match="spilled to disk"):
        asyncio.run(store.create(spilled, 10))
    with pytest.raises(AlreadyExists):
        asyncio.run(store.create(kept, 10))
    assert store.locate(spilled).spilled and store.stats().used == 600  # nothing moved


def test_an_object_a_reader_maps_is_never_spilled(store):
    mapped = _put(store, 600, 1)
    fd = os.open(store.locate(mapped).path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # what a zero-copy reader holds
        with pytest.raises(ResourceExhausted, match="full"):
            asyncio.run(store.create(ids.new_put_id(), 600))
        assert store.locate(mapped).found
    finally:
        os.close(fd)


def test_restore_brings_a_spilled_object_back_intact(store):
    old, _ = _put(store, 600, 1), _put(store, 600, 2)
    path = asyncio.run(store.restore(old))  # spills the other one to make room
    with open(path, "rb") as f:
        assert f.read() == b"\x01" * 600
    where = store.locate(old)
    assert where.found and not where.spilled and where.path == path
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
