"""The client's mappings of store files (store_io.py), on real temp files."""

from __future__ import annotations

import fcntl
import gc
import mmap
import os

import pytest

from ember._private.store_io import ReaderMaps, WriterMaps
from ember_common.store_files import map_locked


def _mapping(tmp_path, name: str, size: int) -> tuple[int, mmap.mmap]:
    path = tmp_path / name
    path.write_bytes(b"\0" * size)
    fd = os.open(path, os.O_RDWR)
    try:
        return os.fstat(fd).st_ino, mmap.mmap(fd, size)
    finally:
        os.close(fd)


def test_writer_maps_hand_back_a_mapping_of_the_same_size_only(tmp_path):
    maps = WriterMaps()
    inode, mm = _mapping(tmp_path, "a", 4096)
    maps.keep(inode, 4096, mm)
    assert maps.take(inode, 4096) is mm
    assert maps.take(inode, 4096) is None  # taken
    maps.keep(inode, 4096, mm)
    assert maps.take(inode, 8192) is None and mm.closed  # the file was resized: the old mapping is useless


def test_writer_maps_close_the_oldest_past_their_bounds(tmp_path):
    maps = WriterMaps(max_bytes=3 * 4096, max_maps=2)
    kept = [_mapping(tmp_path, str(i), 4096) for i in range(3)]
    for inode, mm in kept:
        maps.keep(inode, 4096, mm)
    assert kept[0][1].closed and not kept[1][1].closed and not kept[2][1].closed
    big_inode, big = _mapping(tmp_path, "big", 3 * 4096)
    maps.keep(big_inode, 3 * 4096, big)  # over max_bytes with any other
    assert kept[1][1].closed and kept[2][1].closed
    assert maps.take(big_inode, 3 * 4096) is big


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


def test_a_locked_mapping_reads_the_file_and_holds_a_shared_lock(tmp_path):
    path = tmp_path / "object"
    path.write_bytes(b"hello")
    view = map_locked(str(path))
    assert view is not None and bytes(view) == b"hello"
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):  # the store's exclusive lock waits for readers
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # other readers are welcome
        fcntl.flock(fd, fcntl.LOCK_UN)
        view.release()
        del view
        gc.collect()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock went with the mapping
    finally:
        os.close(fd)


def test_a_locked_mapping_of_a_file_that_is_gone_is_none(tmp_path):
    assert map_locked(str(tmp_path / "missing")) is None
