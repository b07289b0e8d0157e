import os
import time

import pytest

from ember_common import ids
from ember_common.errors import AlreadyExists, InvalidArgument, ResourceExhausted
from ember_objectstore.shm_store import ShmStore


@pytest.fixture
def store(tmp_path):
    s = ShmStore(tmp_path / "store", capacity=1000)
    yield s
    s.close()


def test_create_seal_locate_delete(store):
    oid = ids.new_put_id()
    path = store.create(oid, 100)
    assert path.name.endswith(".unsealed") and os.path.getsize(path) == 100
    assert store.locate(oid) is None  # not visible until sealed
    sealed = store.seal(oid)
    assert sealed.exists() and not path.exists()
    assert store.locate(oid).size == 100
    assert store.used == 100
    assert store.delete([oid, ids.new_put_id()]) == 1
    assert store.used == 0 and not sealed.exists()


def test_capacity_errors_say_the_sizes(store):
    with pytest.raises(ResourceExhausted, match="can never fit.*1000"):
        store.create(ids.new_put_id(), 5000)
    store.create(ids.new_put_id(), 900)
    with pytest.raises(ResourceExhausted, match="full"):
        store.create(ids.new_put_id(), 200)


def test_bad_ids_and_sizes(store):
    with pytest.raises(InvalidArgument, match="20 bytes"):
        store.create(b"short", 10)
    with pytest.raises(InvalidArgument, match="positive"):
        store.create(ids.new_put_id(), 0)
    oid = ids.new_put_id()
    store.create(oid, 10)
    with pytest.raises(AlreadyExists):
        store.create(oid, 10)


def test_abort_frees(store):
    oid = ids.new_put_id()
    store.create(oid, 10)
    store.abort(oid)
    assert store.used == 0 and store.num_unsealed == 0


def test_close_removes_directory(tmp_path):
    s = ShmStore(tmp_path / "d", capacity=100)
    s.seal_id = s.create(ids.new_put_id(), 10)
    s.close()
    assert not (tmp_path / "d").exists()


def _fill(store, size, byte):
    oid = ids.new_put_id()
    path = store.create(oid, size)
    with open(path, "r+b") as f:
        f.write(bytes([byte]) * size)
    return oid, store.seal(oid)


def test_deleted_file_is_recycled_when_nobody_maps_it(store):
    oid, path = _fill(store, 100, 1)
    inode = os.stat(path).st_ino
    store.delete([oid])
    assert store.pool_bytes == 100 and store.used == 0
    new = store.create(ids.new_put_id(), 80)
    assert os.stat(new).st_ino == inode and os.path.getsize(new) == 80 and store.reused == 1
    assert store.pool_bytes == 0


def test_file_still_mapped_by_a_reader_is_not_recycled(store):
    import fcntl
    import mmap

    oid, path = _fill(store, 100, 7)
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # what a zero-copy reader holds
    view = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    store.delete([oid])
    new = store.create(ids.new_put_id(), 100)
    assert os.stat(new).st_ino != os.fstat(fd).st_ino and store.reused == 0
    with open(new, "r+b") as f:
        f.write(b"\x09" * 100)
    assert view[:100] == b"\x07" * 100  # the reader's bytes never change
    view.close()
    os.close(fd)


def test_pool_gives_way_to_live_objects(store):
    oid, _ = _fill(store, 200, 1)
    store.delete([oid])
    assert store.pool_bytes == 200
    store.create(ids.new_put_id(), 900)  # needs the pool's room: pooled file dropped or reused
    assert store.used == 900 and store.used + store.pool_bytes <= store.capacity


def test_pooled_files_unused_for_a_while_go_back(store):
    import time

    first, _ = _fill(store, 100, 1)
    second, _ = _fill(store, 200, 2)
    store.delete([first, second])
    assert store.pool_bytes == 300
    later = time.monotonic() + 10
    assert store.trim_pool(idle_s=30, now=later) == 0  # pooled 10 s before `later`: kept
    assert store.trim_pool(idle_s=5, now=later) == 2
    assert store.pool_bytes == 0 and os.listdir(store.directory / "free") == []


def test_older_than_counts_from_the_seal_and_gives_writers_longer(store):
    sealed, writing = ids.new_put_id(), ids.new_put_id()
    store.create(sealed, 10)
    store.create(writing, 10)
    t0 = time.monotonic()
    store.seal(sealed)
    assert store.older_than(5, 50, now=t0 + 1) == []
    assert store.older_than(5, 50, now=t0 + 6) == [sealed]
    assert sorted(store.older_than(5, 50, now=t0 + 60)) == sorted([sealed, writing])
