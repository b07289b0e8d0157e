"""The shared-memory arena (shm_store.py) on a real file: placement,
sealing, pins, deletion of what readers still hold, recycling of touched
memory and giving it back."""

import mmap
import os
import time

import pytest

from ember_common import ids
from ember_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from ember_objectstore.shm_store import LARGE_OBJECT, PAGE, ShmStore

MB = 1 << 20


@pytest.fixture
def store(tmp_path):
    s = ShmStore(tmp_path / "store", capacity=1000)
    yield s
    s.close()


def test_create_seal_locate_delete(store):
    oid = ids.new_put_id()
    entry = store.create(oid, 100)
    assert store.locate(oid) is None  # not visible until sealed
    assert store.seal(oid) is entry and store.locate(oid).size == 100
    assert store.used == 100 and store.arena_path.exists()
    assert store.delete([oid, ids.new_put_id()]) == 1
    assert store.used == 0 and store.locate(oid) is None


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
    store.seal(oid)
    with pytest.raises(FailedPrecondition, match="sealed"):
        store.abort(oid)


def test_abort_frees(store):
    oid = ids.new_put_id()
    store.create(oid, 10)
    store.abort(oid)
    assert store.used == 0 and store.num_unsealed == 0


def test_close_removes_directory(tmp_path):
    s = ShmStore(tmp_path / "d", capacity=100)
    s.create(ids.new_put_id(), 10)
    s.close()
    assert not (tmp_path / "d").exists()


def test_a_new_store_removes_what_a_killed_one_left(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / (ids.new_put_id().hex() + ".unsealed")).write_bytes(b"x")  # one-file-per-object leftovers
    (directory / "leases").mkdir()
    (directory / "leases" / ("ab" * 16)).write_bytes(b"")
    old = ShmStore(directory, capacity=100)
    s = ShmStore(directory, capacity=100)  # (the first one "killed": never closed)
    assert os.listdir(directory) == [s.arena_path.name] and s.arena_path != old.arena_path
    s.close()


def _fill(store, size, byte):
    oid = ids.new_put_id()
    entry = store.create(oid, size)
    store.view(entry)[:] = bytes([byte]) * size
    store.seal(oid)
    return oid, entry


def test_objects_never_overlap_and_large_ones_start_on_a_page(tmp_path):
    s = ShmStore(tmp_path / "s", capacity=64 * MB)
    entries = [_fill(s, size, n % 250 + 1)[1] for n, size in enumerate([100, 5000, LARGE_OBJECT, 64, 3 * MB, 1])]
    spans = sorted((e.offset, e.offset + e.size) for e in entries)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert all(e.offset % (PAGE if e.size >= LARGE_OBJECT else 64) == 0 for e in entries)
    assert [bytes(s.view(e)[:1]) for e in entries] == [bytes([n % 250 + 1]) for n in range(len(entries))]
    s.close()


def test_a_freed_range_is_reused_with_its_pages(tmp_path):
    s = ShmStore(tmp_path / "s", capacity=8 * MB)
    oid, entry = _fill(s, 2 * MB, 1)
    s.delete([oid])
    assert s.used == 0 and s.pool_bytes >= 2 * MB  # kept: touched pages are faster to write
    again = s.create(ids.new_put_id(), 1 * MB)
    assert again.offset == entry.offset and s.reused == 1
    s.close()


def test_a_pinned_object_deleted_keeps_its_range_until_unpinned(store):
    oid, entry = _fill(store, 100, 7)
    store.pin(entry)  # what a reader's lease holds
    store.delete([oid])
    assert store.locate(oid) is None and store.used == 100  # gone from the store, its memory still in use
    other = store.create(ids.new_put_id(), 100)
    assert other.offset != entry.offset
    store.view(other)[:] = b"\x09" * 100
    assert bytes(store.view(entry)) == b"\x07" * 100  # the reader's bytes never change
    store.unpin(entry)
    assert store.used == 100  # only `other` now


def test_touched_free_memory_gives_way_to_live_objects(tmp_path):
    s = ShmStore(tmp_path / "s", capacity=8 * MB)
    oid, _ = _fill(s, 4 * MB, 1)
    s.delete([oid])
    assert s.pool_bytes >= 4 * MB and s.used == 0
    s.create(ids.new_put_id(), 6 * MB)  # needs room: the touched pages are reused or given back
    assert s.resident_bytes <= s.capacity
    s.close()


def test_touched_free_memory_unused_for_a_while_goes_back(tmp_path):
    s = ShmStore(tmp_path / "s", capacity=32 * MB)
    first, _ = _fill(s, 1 * MB, 1)
    _fill(s, 2 * MB, 9)  # between the two: keeps them apart
    second, _ = _fill(s, 2 * MB, 2)
    s.delete([first, second])
    assert s.resident_bytes >= 5 * MB
    later = time.monotonic() + 10
    assert s.trim_pool(idle_s=30, now=later) == 0  # freed 10 s before `later`: kept
    assert s.trim_pool(idle_s=5, now=later) == 2
    assert 2 * MB <= s.resident_bytes < 3 * MB  # the live object's pages only
    assert s.trim_pool(idle_s=5, now=later) == 0
    s.close()


def test_past_the_pool_limit_freed_memory_goes_back_at_once(tmp_path):
    s = ShmStore(tmp_path / "s", capacity=32 * MB, pool_fraction=0)
    oid, _ = _fill(s, 4 * MB, 1)
    s.delete([oid])
    assert s.resident_bytes == 0
    s.close()


def test_older_than_counts_from_the_seal_and_gives_writers_longer(store):
    sealed, writing = ids.new_put_id(), ids.new_put_id()
    store.create(sealed, 10)
    store.create(writing, 10)
    t0 = time.monotonic()
    store.seal(sealed)
    assert store.older_than(5, 50, now=t0 + 1) == []
    assert store.older_than(5, 50, now=t0 + 6) == [sealed]
    assert sorted(store.older_than(5, 50, now=t0 + 60)) == sorted([sealed, writing])


def test_another_process_reads_through_one_mapping_of_the_arena(tmp_path):
    s = ShmStore(tmp_path / "s", capacity=4 * MB)
    entries = [_fill(s, 1000 + n, n + 1)[1] for n in range(50)]
    fd = os.open(s.arena_path, os.O_RDONLY)
    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    os.close(fd)  # the mapping needs no descriptor
    assert all(mapped[e.offset:e.offset + e.size] == bytes([n + 1]) * e.size for n, e in enumerate(entries))
    mapped.close()
    s.close()


def test_an_object_deleted_while_written_keeps_its_range_for_its_writer(store):
    written, abandoned = ids.new_put_id(), ids.new_put_id()
    entry = store.create(written, 100)
    store.create(abandoned, 100)
    store.delete([written, abandoned])
    assert store.locate(written) is None and store.used == 200  # the writers may still be writing
    other = store.create(ids.new_put_id(), 100)
    assert other.offset != entry.offset
    with pytest.raises(NotFound, match="deleted while written"):
        store.seal(written)  # the writer is done: its range goes
    assert store.used == 200
    assert store.free_abandoned_writes(60, now=time.monotonic() + 30) == 0
    assert store.free_abandoned_writes(60, now=time.monotonic() + 61) == 1  # its writer died
    assert store.used == 100


def test_abort_after_delete_frees_once(store):
    oid = ids.new_put_id()
    store.create(oid, 100)
    store.abort(oid)
    store.abort(oid)
    assert store.used == 0 and store.create(ids.new_put_id(), 100).offset == 0
