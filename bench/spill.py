"""Object spilling to disk and restoring, against plain file copies.

`ember.init(num_cpus=1, object_store_memory=CAP)` starts a private cluster.
The driver puts N numpy arrays of S bytes, each distinct (N x S = factor x
CAP). Once the store is full, each put makes it spill its oldest unmapped
objects to its spill directory (in the session directory, under /tmp). Then
the driver gets them back in order: the store's `Restore` copies each spilled
one back (spilling others if it must); the driver checks its CRC and drops
the array and its ref. `Stats` is read after every put and get, untimed:
spill GB/s = bytes spilled / summed time of the puts that spilled (which also
write their own object: `fill_gbps` is the puts that did not spill), restore
GB/s likewise over the gets that restored. Baselines in the same directory,
S-sized files, plain Python: `os.write` without fsync (as Ember) and with it,
reads back (from the page cache, as Ember's), and `shutil.copyfile` /dev/shm
-> disk and disk -> new /dev/shm files (what spilling and restoring do); each
the faster of two back-to-back passes (the first is in `first_pass_gbps`).
Memory is warmed first, as in bench/transfer.py (see the README).

    python bench/spill.py [--capacity-mb 512] [--object-mb 64] [--factor 3] [--repeat 3] [--warm-memory-gb 6]

Prints one JSON line per repeat (GB/s = 1e9 bytes/s) and a summary of medians.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import pathlib
import shutil
import statistics
import sys
import time
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import ember  # noqa: E402
from ember_common import auth, rpc  # noqa: E402
from ember.v1 import objectstore_pb2, objectstore_pb2_grpc  # noqa: E402
from bench.transfer import warm_memory  # noqa: E402


class Split:
    """Summed seconds of timed ops, split by whether a Stats counter grew
    during the op: those that moved bytes (and how many) and the others."""

    def __init__(self, counter: str) -> None:
        self.counter = counter
        self.moved_t = self.other_t = 0.0
        self.moved_b = self.others = 0

    def timed(self, op, stats, prev):
        """op()'s result and the Stats after it (read untimed)."""
        t = time.perf_counter()
        result = op()
        dt, s = time.perf_counter() - t, stats()
        moved = getattr(s, self.counter) - getattr(prev, self.counter)
        if moved > 0:
            self.moved_t += dt
            self.moved_b += moved
        else:
            self.other_t += dt
            self.others += 1
        return result, s


def ember_round(stats, base: np.ndarray, n: int, rnd: int) -> dict:
    """Put n arrays, then get them back; per-op times split by the Stats deltas."""
    refs, crcs = [], []
    puts, gets = Split("spilled_bytes_total"), Split("restored_bytes_total")
    spilled_in_gets = 0
    prev = stats()
    for i in range(n):
        arr = base + np.uint8((rnd * n + i) % 251 + 1)  # distinct content per object
        crcs.append(zlib.crc32(arr))
        ref, prev = puts.timed(lambda: ember.put(arr), stats, prev)
        refs.append(ref)
    del arr  # the last one put
    full = {"used": prev.used, "num_spilled": prev.num_spilled}
    for i in range(n):
        arr, s = gets.timed(lambda: ember.get(refs[i]), stats, prev)
        spilled_in_gets += s.spilled_bytes_total - prev.spilled_bytes_total
        prev = s
        if zlib.crc32(arr) != crcs[i]:
            raise RuntimeError(f"object {i} came back with other content")
        refs[i] = arr = None
        gc.collect()
    gbps = lambda b, t: round(b / t / 1e9, 3) if t else None  # noqa: E731
    return {"spill_gbps": gbps(puts.moved_b, puts.moved_t), "restore_gbps": gbps(gets.moved_b, gets.moved_t),
            "fill_gbps": gbps(puts.others * base.nbytes, puts.other_t),
            "spilled_bytes": puts.moved_b, "restored_bytes": gets.moved_b, "spilled_during_gets_bytes": spilled_in_gets,
            "spill_puts_s": round(puts.moved_t, 3), "restore_gets_s": round(gets.moved_t, 3),
            "gets_without_restore_s": round(gets.other_t, 4), "store_after_puts": full}


def passes(fn, items, targets=()) -> list[float]:
    """Seconds of 2 back-to-back passes, `targets` deleted before each (see README)."""
    out = []
    for _ in range(2):
        for p in targets:
            pathlib.Path(p).unlink(missing_ok=True)
        t = time.perf_counter()
        for x in items:
            fn(x)
        out.append(time.perf_counter() - t)
    return out


def baselines(directory: pathlib.Path, buf: np.ndarray, count: int) -> dict:
    """Plain-Python file I/O of `count` files of buf's size in `directory`."""
    d = directory / f"spillbench-{os.getpid()}"
    d.mkdir()
    shm = [f"/dev/shm/spillbench-{os.getpid()}-{i}" for i in range(count)]
    data, total = memoryview(buf), count * buf.nbytes

    def write(path, sync=False):
        with open(path, "wb", buffering=0) as f:  # one os.write per file
            if f.write(data) != len(data):
                raise RuntimeError("short write")
            if sync:
                os.fsync(f.fileno())
    into = bytearray(buf.nbytes)  # touched once, reused

    def read(path):
        with open(path, "rb", buffering=0) as f:
            if f.readinto(into) != len(into):
                raise RuntimeError("short read")

    try:
        files, copies = [d / f"w{i}" for i in range(count)], [d / f"c{i}" for i in range(count)]
        t = {"write_gbps": passes(write, files, files), "read_gbps": passes(read, files),
             "write_fsync_gbps": passes(lambda p: write(p, sync=True), files, files)}
        for p in shm:
            write(p)
        t["copy_shm_to_disk_gbps"] = passes(lambda i: shutil.copyfile(shm[i], copies[i]), range(count), copies)
        # the copies back go to new tmpfs files, as restores do
        t["copy_disk_to_shm_gbps"] = passes(lambda i: shutil.copyfile(copies[i], shm[i]), range(count), shm)
    finally:
        shutil.rmtree(d, ignore_errors=True)
        for p in glob.glob(f"/dev/shm/spillbench-{os.getpid()}-*"):
            os.unlink(p)
    return {**{k: round(total / min(v) / 1e9, 3) for k, v in t.items()},
            "first_pass_gbps": {k: round(total / v[0] / 1e9, 3) for k, v in t.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capacity-mb", type=int, default=512, help="object store capacity in MiB (default 512)")
    ap.add_argument("--object-mb", type=int, default=64, help="object size in MiB (default 64)")
    ap.add_argument("--factor", type=float, default=3.0, help="total bytes put / capacity (default 3)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds, each with its baselines (default 3)")
    ap.add_argument("--warm-memory-gb", type=float, default=6.0, help="touch this much memory first (0 = off)")
    a = ap.parse_args()
    cap, size = a.capacity_mb << 20, a.object_mb << 20
    n = max(2, round(a.factor * cap / size))
    base = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    warm_memory(a.warm_memory_gb)
    results, ch = [], None
    try:
        info = ember.init(num_cpus=1, object_store_memory=cap)
        token = auth.read_token(pathlib.Path(info["session_dir"]) / "token")
        ch = rpc.channel(ember.nodes()[0]["ObjectStoreSocketName"], token)
        stub = objectstore_pb2_grpc.ObjectStoreStub(ch)
        stats = lambda: stub.Stats(objectstore_pb2.StatsRequest(), timeout=10)  # noqa: E731
        spill_dir = pathlib.Path(stats().spill_directory)
        for rnd in range(a.repeat):
            line = {"round": rnd, "capacity_bytes": cap, "object_bytes": size, "objects": n}
            line.update(ember_round(stats, base, n, rnd))
            line.update(baselines(spill_dir.parent, base, max(1, line["spilled_bytes"] // size)))
            results.append(line)
            print(json.dumps(line), flush=True)
        print(f"[spill] spill directory {spill_dir}", file=sys.stderr)
    finally:
        if ch is not None:
            ch.close()
        ember.shutdown()
    keys = ["spill_gbps", "restore_gbps", "fill_gbps", "write_gbps", "read_gbps", "write_fsync_gbps",
            "copy_shm_to_disk_gbps", "copy_disk_to_shm_gbps"]
    med = {k: statistics.median(r[k] for r in results) for k in keys if all(r[k] is not None for r in results)}
    ratio = lambda a, b: round(med[a] / med[b], 3) if a in med else None  # noqa: E731
    print(json.dumps({"summary": "object spilling and restoring vs plain file I/O in the same directory (medians)",
                      "rounds": len(results), **med, "spill_vs_copy": ratio("spill_gbps", "copy_shm_to_disk_gbps"),
                      "restore_vs_copy": ratio("restore_gbps", "copy_disk_to_shm_gbps"),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
