"""The arena's free-extent allocator (arena_allocator.py), pure."""

import random

import pytest

from ember_objectstore.arena_allocator import ArenaAllocator


def test_allocations_are_aligned_disjoint_and_merge_back_into_one_extent():
    a = ArenaAllocator(1 << 20)
    rng = random.Random(7)
    live = {}
    for _ in range(2000):
        if live and rng.random() < 0.45:
            start = rng.choice(list(live))
            a.free(start, live.pop(start), now=1.0)
            continue
        n, align = rng.randint(1, 5000), rng.choice([64, 4096])
        placed = a.allocate(n, align)
        if placed is None:
            continue
        start, _ = placed
        assert start % align == 0 and start + n <= a.size
        live[start] = n
    spans = sorted((s, s + n) for s, n in live.items())
    assert all(x[1] <= y[0] for x, y in zip(spans, spans[1:]))
    assert a.free_bytes == a.size - sum(live.values())
    for start, n in list(live.items()):
        a.free(start, n, now=2.0)
    assert a.num_free_extents == 1 and a.free_bytes == a.size


def test_a_freed_hole_is_used_before_the_untouched_tail_and_says_it_was_touched():
    a = ArenaAllocator(1 << 30)
    first, touched = a.allocate(100 << 20, 4096)
    assert not touched
    keep, _ = a.allocate(4096, 4096)  # keeps the hole from merging with the tail
    a.free(first, 100 << 20, now=1.0)
    again, touched = a.allocate(60 << 20, 4096)
    assert again == first and touched


def test_nothing_fits_is_none_and_bad_sizes_are_refused():
    a = ArenaAllocator(8192)
    assert a.allocate(8192, 4096) == (0, False)
    assert a.allocate(1, 64) is None and not a.can_fit(1, 64)
    with pytest.raises(ValueError):
        a.allocate(0, 64)


def test_dirty_extents_come_longest_idle_first_and_can_be_marked_clean():
    a = ArenaAllocator(1 << 20)
    x, _ = a.allocate(4096, 4096)
    a.allocate(4096, 4096)
    y, _ = a.allocate(4096, 4096)
    a.allocate(4096, 4096)
    a.free(y, 4096, now=1.0)
    a.free(x, 4096, now=2.0)
    assert [start for start, _ in a.dirty_extents()] == [y, x]
    a.mark_clean(y)
    assert [start for start, _ in a.dirty_extents()] == [x]
