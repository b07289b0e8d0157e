"""copy_into: a large copy split over threads lands every byte where a
plain slice assignment would, whatever the size and the split."""

import mmap

import pytest

from ember_common import parallel_copy
from ember_common.parallel_copy import copy_into


@pytest.mark.parametrize("size", [1, 4097, parallel_copy.PARALLEL_FROM_BYTES - 1,
                                  parallel_copy.PARALLEL_FROM_BYTES + 12_345, 3 * (1 << 21) * 4 + 7])
def test_every_byte_lands_in_place(size):
    src = bytearray((i * 7 + 3) % 251 for i in range(251)) * (size // 251 + 1)
    src = memoryview(src)[:size]
    with mmap.mmap(-1, size) as m:
        dst = memoryview(m)
        copy_into(dst, src)
        assert dst == src
        del dst


def test_a_read_only_source_is_copied_by_one_thread(monkeypatch):
    started = []
    monkeypatch.setattr(parallel_copy.threading, "Thread", lambda *a, **k: started.append(1))
    size = parallel_copy.PARALLEL_FROM_BYTES + 1
    src = memoryview(bytes(range(256)) * (size // 256 + 1))[:size]  # bytes: read-only
    dst = bytearray(size)
    copy_into(memoryview(dst), src)
    assert dst == src and not started


def test_a_large_writable_source_is_shared_between_threads(monkeypatch):
    import threading

    helpers = []

    class Counted(threading.Thread):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            helpers.append(self)

    monkeypatch.setattr(parallel_copy, "_threads", lambda: 3)
    monkeypatch.setattr(parallel_copy.threading, "Thread", Counted)
    size = parallel_copy.PARALLEL_FROM_BYTES * 2 + 5
    src = bytearray(size)
    src[0], src[size // 2], src[-1] = 1, 2, 3
    dst = bytearray(size)
    copy_into(memoryview(dst), memoryview(src))
    assert dst == src and len(helpers) == 2  # (three shares: this thread copies one)
