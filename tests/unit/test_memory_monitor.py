"""The memory monitor's reading of /proc/meminfo and cgroup files, and its
choice of victim, without a raylet."""

from __future__ import annotations

import pathlib

import pytest

from ember_raylet.memory_monitor import Candidate, MemoryMonitor, MemoryUsage, choose_victim, read_memory_usage

GIB = 2**30


def _meminfo(tmp_path: pathlib.Path, total_kb: int, available_kb: int) -> pathlib.Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {total_kb} kB\nMemFree:        1 kB\nMemAvailable:   {available_kb} kB\n")
    return path


def test_machine_usage_is_total_minus_available(tmp_path):
    usage = read_memory_usage(_meminfo(tmp_path, 8 * 2**20, 6 * 2**20), tmp_path / "none2", tmp_path / "none1")
    assert usage == MemoryUsage(2 * GIB, 8 * GIB)
    assert usage.fraction == 0.25


def test_a_cgroup_limit_fuller_than_the_machine_wins(tmp_path):
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text(str(4 * GIB))
    (v1 / "memory.usage_in_bytes").write_text(str(3 * GIB))
    (v1 / "memory.stat").write_text(f"cache 5\ntotal_inactive_file {GIB}\n")
    usage = read_memory_usage(_meminfo(tmp_path, 64 * 2**20, 60 * 2**20), tmp_path / "v2", v1)
    assert usage == MemoryUsage(2 * GIB, 4 * GIB)  # inactive file pages are reclaimable: not in use


def test_an_unlimited_cgroup_is_ignored(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.current").write_text(str(GIB))
    usage = read_memory_usage(_meminfo(tmp_path, 8 * 2**20, 4 * 2**20), v2, tmp_path / "v1")
    assert usage == MemoryUsage(4 * GIB, 8 * GIB)


def test_retriable_work_goes_first_then_the_newest():
    old_retriable = Candidate(b"a", 1, True, 10.0, "f")
    new_retriable = Candidate(b"b", 2, True, 20.0, "g")
    newest_final = Candidate(b"c", 3, False, 30.0, "h")
    assert choose_victim([old_retriable, newest_final, new_retriable]) is new_retriable
    assert choose_victim([newest_final]) is newest_final
    assert choose_victim([]) is None


def test_the_threshold_and_the_message():
    monitor = MemoryMonitor(0.9)
    assert not monitor.over(MemoryUsage(9, 10))
    assert monitor.over(MemoryUsage(95, 100))
    assert not monitor.over(MemoryUsage(0, 0))  # unreadable: never kill on it
    reason = monitor.reason(MemoryUsage(95 * GIB // 10, 10 * GIB), Candidate(b"c", 42, True, 1.0, "hog"))
    assert "pid 42" in reason and "hog" in reason and "90%" in reason and "9.50 of 10.00 GiB" in reason
    with pytest.raises(ValueError, match="memory_usage_threshold"):
        MemoryMonitor(1.5)
