"""What the machine allows for a workload, with no runtime at all: the
ceiling a runtime's figure can be held against when both runtimes are near
it (a 2x over the other runtime is then out of reach of either).

    python bench/ceilings.py [--num-cpus 2]

prints JSON lines {"runtime": "machine", "metric", "value", "unit", ...}.

task_100mb_arg: the workload sums one 100 MiB float64 array in 40 tasks on
`num_cpus` workers. Here `num_cpus` forked processes sum the same array (in
memory shared with the parent, as a zero-copy argument is) 40 times in all,
with nothing else to do: the rate is bound by memory bandwidth.

copy_100mb_fresh / copy_100mb_touched: one 100 MiB array copied into shared
memory never touched before (each page faulted in and zeroed by the kernel
first, as a put into a new store file is) and into shared memory written
before (a plain memcpy): what a put of 100 MiB is held against.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import time

import numpy as np

MB100 = 100 * 1024 * 1024


def _sums_per_second(arr: np.ndarray, n_sums: int, n_procs: int) -> float:
    expected = float(arr.size)
    t = time.perf_counter()
    pids = []
    for i in range(n_procs):
        share = n_sums // n_procs + (1 if i < n_sums % n_procs else 0)
        pid = os.fork()
        if pid == 0:  # the child: sum, check, leave without cleanup
            ok = all(float(arr.sum()) == expected for _ in range(share))
            os._exit(0 if ok else 1)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("a summing process got a wrong sum")
    return n_sums / (time.perf_counter() - t)


def task_100mb_arg_ceiling(num_cpus: int, n_sums: int = 40, rounds: int = 5) -> dict:
    buf = mmap.mmap(-1, MB100)  # MAP_SHARED: the children read the parent's pages, as workers read the store's
    arr = np.frombuffer(buf, dtype=np.float64)
    arr[:] = 1.0
    _sums_per_second(arr, num_cpus, num_cpus)  # warm-up
    rates = [_sums_per_second(arr, n_sums, num_cpus) for _ in range(rounds)]
    one = _sums_per_second(arr, 10, 1)
    del arr
    buf.close()
    return {"runtime": "machine", "metric": "task_100mb_arg", "value": statistics.median(rates), "unit": "tasks/s",
            "runs": rates, "processes": num_cpus, "one_process": one,
            "bandwidth_gbs": statistics.median(rates) * MB100 / 1e9}


def copy_100mb_ceilings(rounds: int = 7) -> list[dict]:
    src = np.ones(MB100 // 8, dtype=np.float64)
    fresh, touched = [], []
    kept = mmap.mmap(-1, MB100)
    np.frombuffer(kept, dtype=np.float64)[:] = src  # touched once
    for _ in range(rounds):  # alternating, so both see the same load
        buf = mmap.mmap(-1, MB100)  # MAP_SHARED, like a store file
        t = time.perf_counter()
        np.frombuffer(buf, dtype=np.float64)[:] = src
        fresh.append(MB100 / (time.perf_counter() - t) / 1e9)
        buf.close()
        t = time.perf_counter()
        np.frombuffer(kept, dtype=np.float64)[:] = src
        touched.append(MB100 / (time.perf_counter() - t) / 1e9)
    kept.close()
    return [{"runtime": "machine", "metric": name, "value": statistics.median(runs), "unit": "GB/s", "runs": runs}
            for name, runs in (("copy_100mb_fresh", fresh), ("copy_100mb_touched", touched))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-cpus", type=int, default=2)
    a = ap.parse_args()
    print(json.dumps(task_100mb_arg_ceiling(a.num_cpus)), flush=True)
    for line in copy_100mb_ceilings():
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
