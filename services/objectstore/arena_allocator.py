"""Where objects go in the store's arena: a free-extent allocator over a
range of `size` bytes (offsets only; the memory is the arena file's, see
shm_store.py).

Free extents are kept by start and by end, so a freed range merges with its
free neighbours in O(1), and in size classes (powers of two), so a fit is
found without scanning every extent: the smallest class that can hold the
request is tried first, which keeps recently freed (touched) memory in use
before the never-touched tail of the arena. Each free extent remembers
whether it may hold touched pages (`dirty`) and since when it is free, so
the store can give idle touched memory back to the system (punching holes)
without ever touching allocated memory.
"""

from __future__ import annotations

import dataclasses

_CLASSES = 64
_SCAN = 16  # extents looked at in the request's own class before larger classes


@dataclasses.dataclass
class FreeExtent:
    length: int
    dirty: bool  # may hold touched pages (it was allocated once since it was last punched)
    since: float  # when it (or the newest part merged into it) became free


def _size_class(n: int) -> int:
    return n.bit_length() - 1


class ArenaAllocator:
    def __init__(self, size: int) -> None:
        self.size = size
        self._by_start: dict[int, FreeExtent] = {}
        self._by_end: dict[int, int] = {}  # end -> start
        self._classes: list[dict[int, None]] = [{} for _ in range(_CLASSES)]  # class -> starts (ordered)
        self.free_bytes = 0
        self._insert(0, FreeExtent(size, False, 0.0))

    def allocate(self, n: int, align: int) -> tuple[int, bool] | None:
        """An `align`-aligned start of `n` free bytes, and whether any of the
        extent it came from may hold touched pages; None if nothing fits."""
        if n <= 0:
            raise ValueError(f"allocation size must be positive, got {n}")
        start = self._find(n, align)
        if start is None:
            return None
        extent = self._remove(start)
        at = -(-start // align) * align
        if at > start:  # the unaligned head stays free
            self._insert(start, FreeExtent(at - start, extent.dirty, extent.since))
        end = start + extent.length
        if end > at + n:
            self._insert(at + n, FreeExtent(end - at - n, extent.dirty, extent.since))
        return at, extent.dirty

    def can_fit(self, n: int, align: int) -> bool:
        return self._find(n, align) is not None

    def free(self, start: int, n: int, now: float) -> tuple[int, int]:
        """Give back [start, start+n); the free extent it is now part of."""
        extent = FreeExtent(n, True, now)
        before = self._by_end.get(start)
        if before is not None:
            prev = self._remove(before)
            start, extent = before, FreeExtent(prev.length + extent.length, True, now)
        after = self._by_start.get(start + extent.length)
        if after is not None:
            nxt = self._remove(start + extent.length)
            extent = FreeExtent(extent.length + nxt.length, True, now)
        self._insert(start, extent)
        return start, extent.length

    def dirty_extents(self) -> list[tuple[int, FreeExtent]]:
        """Free extents that may hold touched pages, the longest idle first."""
        return sorted(((s, e) for s, e in self._by_start.items() if e.dirty), key=lambda item: item[1].since)

    def mark_clean(self, start: int) -> None:
        """The free extent at `start` holds no touched pages any more."""
        self._by_start[start].dirty = False

    @property
    def num_free_extents(self) -> int:
        return len(self._by_start)

    def _find(self, n: int, align: int) -> int | None:
        def fits(start: int) -> bool:
            at = -(-start // align) * align
            return at + n <= start + self._by_start[start].length

        cls = _size_class(n)
        own = self._classes[cls]
        for i, start in enumerate(own):
            if i >= _SCAN:
                break
            if fits(start):
                return start
        for c in range(cls + 1, _CLASSES):
            for start in self._classes[c]:
                if fits(start):  # only alignment can fail here
                    return start
        for start in own:  # the rest of the request's own class
            if fits(start):
                return start
        return None

    def _insert(self, start: int, extent: FreeExtent) -> None:
        self._by_start[start] = extent
        self._by_end[start + extent.length] = start
        self._classes[_size_class(extent.length)][start] = None
        self.free_bytes += extent.length

    def _remove(self, start: int) -> FreeExtent:
        extent = self._by_start.pop(start)
        del self._by_end[start + extent.length]
        del self._classes[_size_class(extent.length)][start]
        self.free_bytes -= extent.length
        return extent
