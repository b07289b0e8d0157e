"""Copying a large buffer with more than one thread.

A put of a large array copies it into the store's shared memory. One
thread's copy into memory never touched runs at the speed the kernel
faults pages in (1.6 GB/s here); the page faults of different threads run
in parallel, and so does a copy into memory written before. Python's own
slice assignment holds the GIL for the whole copy, so each thread copies
its share with `ctypes.memmove`, a foreign call that lets go of the GIL.
"""

from __future__ import annotations

import ctypes
import os
import threading

PARALLEL_FROM_BYTES = 32 << 20  # smaller copies are not worth a thread
_CHUNK_ALIGN = 1 << 21  # shares start on 2 MiB boundaries (huge pages, whole pages)


def _threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def copy_into(dst: memoryview, src: memoryview) -> None:
    """dst[:] = src (same length, bytes), with up to 4 threads when it is
    large and both can be addressed (a read-only source is copied by one)."""
    n = src.nbytes
    threads = _threads()
    if n < PARALLEL_FROM_BYTES or threads == 1 or src.readonly or dst.readonly:
        dst[:n] = src
        return
    dst_at = ctypes.addressof(ctypes.c_char.from_buffer(dst))
    src_at = ctypes.addressof(ctypes.c_char.from_buffer(src))
    share = -(-n // threads)
    share = -(-share // _CHUNK_ALIGN) * _CHUNK_ALIGN
    spans = [(start, min(share, n - start)) for start in range(0, n, share)]
    errors: list[BaseException] = []

    def copy(start: int, length: int) -> None:
        try:
            ctypes.memmove(dst_at + start, src_at + start, length)
        except BaseException as e:  # (memmove does not raise; kept so a failure is never silent)
            errors.append(e)

    helpers = [threading.Thread(target=copy, args=span, daemon=True) for span in spans[1:]]
    for t in helpers:
        t.start()
    copy(*spans[0])
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]
