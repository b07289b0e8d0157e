"""Keeping the node out of the kernel's OOM killer: when memory in use
passes a threshold, the raylet kills one worker that runs work (its task
fails with OutOfMemoryError, or is retried) rather than let the kernel pick
a victim, which may be the raylet, the store or the GCS.

Ray's policy (memory_monitor.cc, group-by-owner): retriable work goes
first, and the newest of it (the least work is lost). Usage is the tighter
of the machine's (MemTotal - MemAvailable: shared-memory objects count as
used, page cache does not) and the raylet's cgroup's (usage less inactive
file pages), as a container's limit is what its OOM killer enforces.

The reading and the choice are plain functions; the raylet's loop
(service.py) polls, kills and reports.
"""

from __future__ import annotations

import dataclasses
import pathlib

_MEMINFO = pathlib.Path("/proc/meminfo")
_CGROUP_V2 = pathlib.Path("/sys/fs/cgroup")
_CGROUP_V1 = pathlib.Path("/sys/fs/cgroup/memory")
_NO_LIMIT = 1 << 60  # cgroup v1 "unlimited" is ~2^63 rounded to a page


@dataclasses.dataclass(frozen=True)
class MemoryUsage:
    used: int
    total: int

    @property
    def fraction(self) -> float:
        return self.used / self.total if self.total else 0.0

    def describe(self) -> str:
        return f"{self.used / 2**30:.2f} of {self.total / 2**30:.2f} GiB in use ({self.fraction:.1%})"


def read_memory_usage(meminfo: pathlib.Path = _MEMINFO, cgroup_v2: pathlib.Path = _CGROUP_V2,
                      cgroup_v1: pathlib.Path = _CGROUP_V1) -> MemoryUsage:
    """The node's memory in use: the fuller of the machine and this
    process's cgroup (when it has a limit)."""
    candidates = [u for u in (_machine(meminfo), _cgroup(cgroup_v2, cgroup_v1)) if u is not None]
    return max(candidates, key=lambda u: u.fraction) if candidates else MemoryUsage(0, 0)


def _machine(meminfo: pathlib.Path) -> MemoryUsage | None:
    try:
        fields = {}
        for line in meminfo.read_text().splitlines():
            name, _, rest = line.partition(":")
            fields[name] = int(rest.split()[0]) * 1024
        return MemoryUsage(fields["MemTotal"] - fields["MemAvailable"], fields["MemTotal"])
    except (OSError, KeyError, ValueError, IndexError):
        return None


def _cgroup(v2: pathlib.Path, v1: pathlib.Path) -> MemoryUsage | None:
    for limit_file, usage_file, inactive_key in (
            (v2 / "memory.max", v2 / "memory.current", "inactive_file"),
            (v1 / "memory.limit_in_bytes", v1 / "memory.usage_in_bytes", "total_inactive_file")):
        try:
            raw = limit_file.read_text().strip()
            if raw == "max" or int(raw) >= _NO_LIMIT:
                continue
            usage = int(usage_file.read_text())
            inactive = 0
            for line in (limit_file.parent / "memory.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    inactive = int(value)
            return MemoryUsage(max(0, usage - inactive), int(raw))
        except (OSError, ValueError):
            continue
    return None


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A worker that runs work, as the policy sees it."""

    worker_id: bytes
    pid: int
    retriable: bool  # its work would run again (task retries left, or an actor that restarts)
    started_at: float  # when its current work started (monotonic)
    description: str  # what it runs, for the error message


def choose_victim(candidates: list[Candidate]) -> Candidate | None:
    """Retriable work before work that would be lost; then the newest."""
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c.retriable, c.started_at))


class MemoryMonitor:
    """The threshold and the kill in flight: one kill at a time, and none
    until the last victim's process is gone (its memory is not free before)."""

    def __init__(self, threshold: float) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"memory_usage_threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.killing: int | None = None  # pid of the worker being killed
        self.kills_total = 0

    def over(self, usage: MemoryUsage) -> bool:
        return usage.total > 0 and usage.fraction > self.threshold

    def reason(self, usage: MemoryUsage, victim: Candidate) -> str:
        return (f"the node ran low on memory: {usage.describe()}, over the memory_usage_threshold of "
                f"{self.threshold:.0%}; the raylet killed the worker (pid {victim.pid}) running {victim.description}, "
                "the newest " + ("retriable " if victim.retriable else "") + "work on the node. Use less memory per "
                "task, give tasks a `memory` resource so fewer run at once, or add memory "
                "(EMBER_MEMORY_USAGE_THRESHOLD sets the threshold)")
