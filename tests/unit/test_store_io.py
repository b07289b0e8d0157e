"""The client's side of the store (store_io.py, ember_common.store_files):
its cache, the arena mapping, pinned views and the lease file, on real
temp files."""

from __future__ import annotations

import fcntl
import gc
import os

import pytest

from ember._private.store_io import ReaderMaps
from ember_common.store_files import ArenaMapping, LeaseFile, PinnedViews


def test_reader_maps_evict_the_least_recently_used():
    maps = ReaderMaps(max_bytes=30, max_maps=3)
    views = {k: memoryview(bytes(10)) for k in (b"a", b"b", b"c", b"d")}
    for k in (b"a", b"b", b"c"):
        maps.put(k, views[k])
    assert maps.get(b"a") is views[b"a"]  # now the most recent
    maps.put(b"d", views[b"d"])
    assert maps.get(b"b") is None and maps.get(b"a") is not None and maps.get(b"d") is not None


def test_reader_maps_keep_within_their_bytes():
    maps = ReaderMaps(max_bytes=25)
    maps.put(b"a", memoryview(bytes(10)))
    maps.put(b"b", memoryview(bytes(10)))
    maps.put(b"c", memoryview(bytes(10)))
    assert maps.get(b"a") is None and maps.get(b"c") is not None
    maps.drop(b"c")
    maps.put(b"d", memoryview(bytes(15)))
    assert maps.get(b"b") is not None and maps.get(b"d") is not None  # 25 bytes: room after the drop
    assert maps.clear() == 2 and maps.get(b"b") is None and maps.clear() == 0


def test_reader_maps_hold_nothing_before_their_bound_is_known():
    maps = ReaderMaps()
    maps.put(b"a", memoryview(bytes(1)))
    assert maps.get(b"a") is None


def test_a_pinned_view_reads_the_arena_and_its_death_says_unpin(tmp_path):
    path = tmp_path / "arena"
    path.write_bytes(b"\0" * 100 + b"hello" + b"\0" * 100)
    arena, pinned = ArenaMapping(), PinnedViews()
    woken = []
    pinned.on_gone.append(lambda: woken.append(1))
    view = pinned.add(b"a", arena.pinned_range(str(path), 100, 5))
    assert bytes(view) == b"hello" and view.readonly
    part = view[1:3]  # (what a numpy array made over it holds)
    again = pinned.get(b"a")
    assert again is not None and bytes(again) == b"hello"
    del view, again
    gc.collect()
    assert pinned.take_unpins() == [] and not woken  # a part of it is alive
    del part
    assert woken and pinned.take_unpins() == [b"a"] and pinned.get(b"a") is None


def test_an_object_pinned_again_before_its_unpin_is_sent_stays_pinned(tmp_path):
    path = tmp_path / "arena"
    path.write_bytes(b"x" * 4096)
    arena, pinned = ArenaMapping(), PinnedViews()
    view = pinned.add(b"a", arena.pinned_range(str(path), 0, 10))
    del view
    kept = pinned.add(b"a", arena.pinned_range(str(path), 0, 10))  # pinned again (the store pins once)
    assert pinned.take_unpins() == [] and bytes(kept) == b"x" * 10


def test_the_arena_is_mapped_once_and_again_when_the_store_replaced_it(tmp_path):
    path = tmp_path / "arena-1"
    path.write_bytes(b"a" * 4096)
    arena = ArenaMapping()
    first = arena.mapping(str(path))
    assert arena.mapping(str(path)) is first
    old = arena.writable(str(path), 0, 4)
    path.unlink()
    (tmp_path / "arena-2").write_bytes(b"b" * 4096)  # a restarted store's new arena (a name of its own)
    assert bytes(arena.writable(str(tmp_path / "arena-2"), 0, 4)) == b"bbbb" and bytes(old) == b"aaaa"


def test_a_lease_file_is_locked_while_its_process_lives(tmp_path):
    (tmp_path / "leases").mkdir()
    lease = LeaseFile(str(tmp_path))
    path = tmp_path / "leases" / lease.lease_id.hex()
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lease.close()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what the store sees once we are gone
    finally:
        os.close(fd)
    assert os.listdir(tmp_path / "leases") == [lease.lease_id.hex()]
