"""Reading the node's object store files from another process: a
read-only mapping under a shared flock, which tells the store not to
recycle, spill or evict the file while it is read (services/objectstore/).
Used by the SDK (zero-copy gets) and the raylet (values it streams to
clients in other languages)."""

from __future__ import annotations

import fcntl
import mmap
import os
import weakref


def map_locked(path: str) -> memoryview | None:
    """Map a store file read-only under a shared flock; None if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            os.close(fd)
            return None  # removed (or replaced) between our open and our lock
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    weakref.finalize(mm, os.close, fd)
    return memoryview(mm)
