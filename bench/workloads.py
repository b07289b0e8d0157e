"""One benchmark pass on one runtime, in this (fresh) process.

    python bench/workloads.py --runtime ember|ray [--quick] [--out FILE] [--pid-file FILE]

The same code runs on both runtimes: the runtime module is imported as `rt`
(`import ember as rt` or `import ray as rt`). Each metric is written as one
JSON line {"runtime", "metric", "value", "unit", "lower_is_better", ...} to
stdout and, with --out, to FILE. `bench/run.py` starts this script in a fresh
subprocess per runtime and per repeat, and takes medians.

Needs only the runtime itself, numpy and psutil (no ember import when
--runtime ray), so it runs under a separate virtualenv's python for Ray.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import signal
import statistics
import sys
import threading
import time
import traceback

import numpy as np
import psutil

rt = None  # the runtime module (ember or ray), set in main()
RUNTIME = ""
OUT = None
PID_FILE = None

MB100 = 100 * 1024 * 1024  # bytes of the "100 MB" array (100 MiB)


# ---- remote functions (defined once, shared by both runtimes) ----------------

def _small(x):
    return x


def _inner():
    return 1


def _outer(batches, fanout):
    # Tasks that submit subtasks and get them (a task blocked in get lends its
    # CPU in both runtimes).
    n = 0
    for _ in range(batches):
        n += sum(rt.get([inner.remote() for _ in range(fanout)]))
    return n


def _fib(n):
    # The recursion every tutorial shows: each level waits in get for the next.
    return n if n < 2 else sum(rt.get([fib.remote(n - 1), fib.remote(n - 2)]))


def _array_sum(a):
    return float(a.sum())


class _Target:
    """The actor every actor workload calls."""

    def ping(self, x=None):
        return x


class _Caller:
    """Calls its own target actor: n callers to n actors."""

    def __init__(self, target):
        self.target = target

    def run(self, n):
        return len(rt.get([self.target.ping.remote(i) for i in range(n)]))


small = inner = outer = array_sum = None  # made remote in main()


# ---- output --------------------------------------------------------------------

def emit(metric, value, unit, lower_is_better=False, **extra):
    rec = {"runtime": RUNTIME, "metric": metric, "value": value, "unit": unit,
           "lower_is_better": lower_is_better, **extra}
    line = json.dumps(rec)
    print(line, flush=True)
    if OUT:
        with open(OUT, "a") as f:
            f.write(line + "\n")


def emit_error(metric, exc_text):
    rec = {"runtime": RUNTIME, "metric": metric, "error": exc_text}
    line = json.dumps(rec)
    print(line, flush=True)
    if OUT:
        with open(OUT, "a") as f:
            f.write(line + "\n")


# ---- the cluster's processes and memory ---------------------------------------

def _classify(p):
    """A short name for one cluster process (for the memory breakdown)."""
    try:
        cmd = p.cmdline()
        name = p.name()
    except (psutil.Error, OSError):
        return "?"
    if "-m" in cmd:  # ember services and workers: python -m MODULE
        mod = cmd[cmd.index("-m") + 1] if cmd.index("-m") + 1 < len(cmd) else "?"
        return {"ember._private.worker": "ember_worker"}.get(mod, mod.removesuffix(".main"))
    if cmd and cmd[0].startswith("ray::"):
        title = cmd[0].split()[0]
        return "ray_worker" if title in ("ray::IDLE",) or title.startswith("ray::_") else title
    joined = " ".join(cmd[:3])
    for key in ("dashboard.py", "monitor.py", "log_monitor.py", "agent.py", "runtime_env"):
        if key in joined:
            if key == "monitor.py" and "log_monitor.py" in joined:
                continue
            return key.removesuffix(".py")
    return name


def cluster_processes():
    """Every process of the cluster this driver started: its descendants."""
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def cluster_pss():
    """(total PSS MB, {kind: PSS MB}, {kind: count}, extra) over the cluster's
    processes; extra has the RSS and USS sums and the driver's own PSS (not
    counted in the total), for comparison with figures measured other ways."""
    total = rss = uss = 0
    by_kind: dict[str, float] = {}
    counts: dict[str, int] = {}
    for p in cluster_processes():
        try:
            mi = p.memory_full_info()
        except (psutil.Error, OSError):
            continue
        kind = _classify(p)
        total += mi.pss
        rss += mi.rss
        uss += mi.uss
        by_kind[kind] = by_kind.get(kind, 0) + mi.pss / 1e6
        counts[kind] = counts.get(kind, 0) + 1
    try:
        driver = psutil.Process().memory_full_info().pss / 1e6
    except (psutil.Error, OSError):
        driver = None
    extra = {"rss_sum_mb": round(rss / 1e6, 1), "uss_sum_mb": round(uss / 1e6, 1),
             "driver_pss_mb": round(driver, 1) if driver is not None else None}
    return total / 1e6, {k: round(v, 1) for k, v in sorted(by_kind.items())}, counts, extra


def write_pid_file():
    """Record the cluster's pids (and ember's shm directory) so run.py can
    clean up after a run that hung or crashed."""
    if not PID_FILE:
        return
    procs = []
    for p in cluster_processes():
        try:
            procs.append({"pid": p.pid, "create_time": p.create_time()})
        except psutil.Error:
            pass
    info = {"driver": os.getpid(), "procs": procs}
    if RUNTIME == "ember":
        try:
            from ember._private import runtime as _ert  # only to find the store directory
            node = _ert._state.local_node
            if node is not None:
                info["shm_dirs"] = [node.store_dir]
                info["session_dir"] = str(node.session_dir)
        except Exception:
            pass
    tmp = PID_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, PID_FILE)


# ---- workloads -------------------------------------------------------------------

def bench_sync_tasks(n):
    for i in range(20):
        rt.get(small.remote(i))
    t = time.perf_counter()
    for i in range(n):
        rt.get(small.remote(i))
    dt = time.perf_counter() - t
    emit("sync_tasks", n / dt, "tasks/s", n=n)


def bench_async_tasks(n, reps):
    rt.get([small.remote(i) for i in range(100)])
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        rt.get([small.remote(i) for i in range(n)])
        rates.append(n / (time.perf_counter() - t))
    emit("async_tasks", statistics.median(rates), "tasks/s", n=n, reps=reps)


def bench_nested(n_outer, batches, fanout, rounds):
    rt.get([outer.remote(1, fanout) for _ in range(n_outer)])  # warm-up: workers start
    rates = []
    per_round = n_outer * batches * fanout
    for _ in range(rounds):
        t = time.perf_counter()
        got = sum(rt.get([outer.remote(batches, fanout) for _ in range(n_outer)]))
        rates.append(per_round / (time.perf_counter() - t))
        assert got == per_round, got
    emit("nested_subtasks", statistics.median(rates), "subtasks/s",
         outer_tasks=n_outer, batches=batches, fanout=fanout, rounds=rounds)


def bench_recursion(n):
    """fib(n) by recursive tasks on num_cpus CPUs: wall time, and the
    cluster's peak memory and worker count while it runs (sampled)."""
    peak = {"mb": 0.0, "workers": 0}
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            mb, _by_kind, counts, _extra = cluster_pss()
            peak["mb"] = max(peak["mb"], mb)
            workers = sum(c for kind, c in counts.items() if "worker" in kind or kind.startswith("ray::"))
            peak["workers"] = max(peak["workers"], workers)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    got = rt.get(fib.remote(n))
    elapsed = time.perf_counter() - t
    done.set()
    sampler.join()
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    assert got == a, (got, a)
    emit("recursion_fib_s", elapsed, "s", lower_is_better=True, n=n)
    emit("mem_recursion_peak", peak["mb"], "MB", lower_is_better=True, n=n, peak_workers=peak["workers"])


def bench_put_get_small(n_put, n_get):
    for i in range(20):
        rt.put(i)
    refs = []
    t = time.perf_counter()
    for i in range(n_put):
        refs.append(rt.put(0))
    dt = time.perf_counter() - t
    emit("put_small", n_put / dt, "ops/s", n=n_put)
    ref = rt.put(0)
    for _ in range(20):
        rt.get(ref)
    t = time.perf_counter()
    for _ in range(n_get):
        rt.get(ref)
    dt = time.perf_counter() - t
    emit("get_small", n_get / dt, "ops/s", n=n_get)
    del refs, ref


def bench_wait_ready(reps):
    refs = [small.remote(i) for i in range(1000)]
    rt.get(refs)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        ready, not_ready = rt.wait(refs, num_returns=len(refs), timeout=30)
        times.append(time.perf_counter() - t)
        assert len(ready) == 1000 and not not_ready
    emit("wait_1000_ready", statistics.median(times) * 1e3, "ms", lower_is_better=True, reps=reps)


def bench_big_objects(n_put, n_get, n_tasks):
    arr = np.ones(MB100 // 8, dtype=np.float64)  # touched memory, 100 MiB
    expected = float(arr.size)
    ref = rt.put(arr)  # warm-up (first mapping of the store)
    del ref
    gc.collect()
    times = []
    for _ in range(n_put):
        t = time.perf_counter()
        ref = rt.put(arr)
        times.append(time.perf_counter() - t)
        del ref
        gc.collect()
    emit("put_100mb", arr.nbytes / statistics.median(times) / 1e9, "GB/s", n=n_put,
         median_s=statistics.median(times))

    ref = rt.put(arr)
    times = []
    for _ in range(n_get + 1):
        t = time.perf_counter()
        got = rt.get(ref)
        times.append(time.perf_counter() - t)
        assert got.shape == arr.shape
        del got
    times = times[1:]  # first get may map the segment
    med = statistics.median(times)
    emit("get_100mb_s", med, "s", lower_is_better=True, n=n_get)
    emit("get_100mb", arr.nbytes / med / 1e9, "GB/s equivalent", n=n_get)

    assert rt.get(array_sum.remote(ref)) == expected  # warm-up
    rt.get([array_sum.remote(ref) for _ in range(2)])
    t = time.perf_counter()
    sums = rt.get([array_sum.remote(ref) for _ in range(n_tasks)])
    dt = time.perf_counter() - t
    assert all(s == expected for s in sums), sums[:3]
    emit("task_100mb_arg", n_tasks / dt, "tasks/s", n=n_tasks)
    del ref, arr, sums


def bench_actor_creation(n):
    rt.get(target.remote().ping.remote())  # warm-up
    t = time.perf_counter()
    actors = [target.remote() for _ in range(n)]
    rt.get([a.ping.remote() for a in actors])  # created and answering
    dt = time.perf_counter() - t
    emit("actor_creation", n / dt, "actors/s", n=n)
    for a in actors:
        rt.kill(a)


def bench_actor_calls(n_sync, n_async, reps):
    a = target.remote()
    rt.get([a.ping.remote(i) for i in range(100)])
    t = time.perf_counter()
    for i in range(n_sync):
        rt.get(a.ping.remote(i))
    emit("actor_sync_calls", n_sync / (time.perf_counter() - t), "calls/s", n=n_sync)
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        rt.get([a.ping.remote(i) for i in range(n_async)])
        rates.append(n_async / (time.perf_counter() - t))
    emit("actor_async_calls", statistics.median(rates), "calls/s", n=n_async, reps=reps)
    rt.kill(a)


def bench_actor_n_to_n(n_pairs, calls, reps):
    callers = [caller.remote(target.remote()) for _ in range(n_pairs)]
    rt.get([c.run.remote(10) for c in callers])  # all created and warm
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        done = sum(rt.get([c.run.remote(calls) for c in callers]))
        rates.append(done / (time.perf_counter() - t))
    emit("actor_n_to_n_calls", statistics.median(rates), "calls/s", pairs=n_pairs, calls_each=calls, reps=reps)
    for c in callers:
        rt.kill(c)


# ---- main ------------------------------------------------------------------------

def run_metric(name, fn, *args, timeout=120):
    """Run one workload; a hang dumps every thread's stack and exits (run.py
    then reports it and cleans up the cluster)."""
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        fn(*args)
    except Exception:
        emit_error(name, traceback.format_exc())
    finally:
        faulthandler.cancel_dump_traceback_later()
        write_pid_file()


def main():
    global rt, RUNTIME, OUT, PID_FILE, small, inner, outer, fib, array_sum, target, caller
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", choices=["ember", "ray"], required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--pid-file")
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--idle-settle", type=float, default=3.0,
                    help="seconds to wait after the first task before measuring idle memory")
    a = ap.parse_args()
    RUNTIME, OUT, PID_FILE = a.runtime, a.out, a.pid_file
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # run.py asks for stacks before killing a hung run
    q = a.quick

    t = time.perf_counter()
    if a.runtime == "ember":
        import ember as rt_mod
    else:
        import ray as rt_mod
    rt = rt_mod
    rt.init, rt.remote, rt.get  # noqa: B018 -- `import ember` is lazy: time the SDK actually loading
    import_s = time.perf_counter() - t
    emit("import", import_s, "s", lower_is_better=True,
         version=getattr(rt, "__version__", "?"), python=sys.version.split()[0])

    small, inner, outer, fib, array_sum = (rt.remote(f) for f in (_small, _inner, _outer, _fib, _array_sum))
    target, caller = rt.remote(_Target), rt.remote(_Caller)

    faulthandler.dump_traceback_later(120, exit=True)
    t = time.perf_counter()
    # Ray on loopback too (it takes the machine's address by default); Ember's services bind 127.0.0.1.
    rt.init(num_cpus=a.num_cpus, **({"_node_ip_address": "127.0.0.1"} if a.runtime == "ray" else {}))
    init_call_s = time.perf_counter() - t
    write_pid_file()
    assert rt.get(small.remote(1)) == 1
    init_s = time.perf_counter() - t
    faulthandler.cancel_dump_traceback_later()
    write_pid_file()
    emit("init", init_s, "s", lower_is_better=True, init_call_s=round(init_call_s, 3))

    time.sleep(a.idle_settle)
    write_pid_file()
    mb, by_kind, counts, extra = cluster_pss()
    emit("mem_idle", mb, "MB", lower_is_better=True, breakdown_mb=by_kind, processes=counts, **extra)

    run_metric("sync_tasks", bench_sync_tasks, 200 if q else 1000)
    run_metric("async_tasks", bench_async_tasks, 1000, 1 if q else 5)
    run_metric("nested_subtasks", bench_nested, 4, 5 if q else 10, 10, 1 if q else 3)
    run_metric("put_get_small", bench_put_get_small, 200 if q else 1000, 500 if q else 2000)
    run_metric("wait_1000_ready", bench_wait_ready, 5 if q else 50)
    run_metric("big_objects", bench_big_objects, 3 if q else 10, 5 if q else 50, 10 if q else 40)

    gc.collect()
    time.sleep(1.0)
    mb, by_kind, counts, extra = cluster_pss()
    emit("mem_after", mb, "MB", lower_is_better=True, breakdown_mb=by_kind, processes=counts, **extra)

    # Actors come after the memory figure, which is about the task workloads.
    run_metric("actor_creation", bench_actor_creation, 8 if q else 20)
    run_metric("actor_calls", bench_actor_calls, 200 if q else 1000, 1000, 1 if q else 5)
    run_metric("actor_n_to_n", bench_actor_n_to_n, 2, 200 if q else 1000, 1 if q else 3)
    # Last: Ray's pool grows with the recursion and keeps what it started.
    run_metric("recursion", bench_recursion, 10 if q else 12, timeout=300)

    faulthandler.dump_traceback_later(60, exit=True)
    t = time.perf_counter()
    rt.shutdown()
    emit("shutdown", time.perf_counter() - t, "s", lower_is_better=True)
    faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    main()
