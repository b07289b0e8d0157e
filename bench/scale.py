"""Cost as work grows: each point one fresh cluster on this machine, Ember
and (with --ray-python) Ray 2.60 beside it, alternating.

    python bench/scale.py queue|refs|actors|envelope [--sizes N,N,...] [--ray-python PATH]
                          [--ray-max N] [--png FILE]

`queue`: two tasks hold both CPUs while N no-op tasks are submitted, so all
N are queued; then the two let go and all N are got. Per depth: the submit
rate, the memory per queued task in the driver and the raylet together
(PSS after submission less PSS before, over N), and the drain rate (release
to the last result). A depth under 10,000 is run in rounds until 10,000
tasks went through, so its rates are not one blink.

`refs`: per count k, the time of one get and of one wait (num_returns=k) on
k ready refs, small values (task returns) and shared-memory ones (k arrays
of 200 KB put), best of 5.

`actors`: per count n, the time to create n actors (num_cpus=0) and see
them all ready, and the PSS of the whole cluster per live actor.

`envelope`: Ray's published scalability envelope, one point each: 10,000
refs as arguments of one task, 3,000 returns from one task, 1,000 placement
groups created and ready, and a 4 GiB object put and got.

Each prints one JSON line per point; each curve is also drawn into a PNG
in bench/ (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import textwrap

HERE = pathlib.Path(__file__).resolve().parent

# Every point script starts the same: the runtime as `rt`, a 2-CPU cluster
# on this machine, and how to find its raylet and its processes.
PREAMBLE = textwrap.dedent("""
    import gc, json, os, sys, tempfile, time
    import psutil
    runtime, size = sys.argv[1], int(sys.argv[2])
    store = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if runtime == "ray":
        import ray as rt
        rt.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", object_store_memory=store)
        is_raylet = lambda p: p.name() == "raylet"
    else:
        import ember as rt
        rt.init(num_cpus=2, object_store_memory=store)
        is_raylet = lambda p: "ember_raylet" in " ".join(p.cmdline())
    me = psutil.Process()

    def cluster_pss():
        total = me.memory_full_info().pss
        for p in me.children(recursive=True):
            try:
                total += p.memory_full_info().pss
            except psutil.Error:
                pass
        return total
""")

QUEUE = PREAMBLE + textwrap.dedent("""
    depth = size
    raylet = next(p for p in me.children(recursive=True) if is_raylet(p))

    @rt.remote
    def noop():
        return None

    @rt.remote(num_cpus=1)
    def hold(path):
        while not os.path.exists(path):
            time.sleep(0.005)

    def pss():
        gc.collect()
        return me.memory_full_info().pss + raylet.memory_full_info().pss

    rt.get([noop.remote() for _ in range(2000)])  # workers warm
    rounds = max(1, 10_000 // depth)
    submit_s = drain_s = 0.0
    per_task = []
    for _ in range(rounds):
        flag = tempfile.mktemp(prefix="scale-queue-")
        holders = [hold.remote(flag) for _ in range(2)]
        time.sleep(0.5)  # both running: what follows queues behind them
        before = pss()
        t0 = time.perf_counter()
        refs = [noop.remote() for _ in range(depth)]
        submit_s += time.perf_counter() - t0
        time.sleep(1.0)  # what was sent is in the raylet
        per_task.append((pss() - before) / depth)
        open(flag, "w").close()
        t0 = time.perf_counter()
        rt.get(refs)
        drain_s += time.perf_counter() - t0
        rt.get(holders)
        os.unlink(flag)
        del refs
    print(json.dumps({"runtime": runtime, "depth": depth, "rounds": rounds,
                      "submit_per_s": round(depth * rounds / submit_s),
                      "drain_per_s": round(depth * rounds / drain_s),
                      "bytes_per_queued_task": round(max(per_task))}))
    rt.shutdown()
""")


REFS = PREAMBLE + textwrap.dedent("""
    import numpy as np
    k = size

    @rt.remote
    def value(i):
        return i

    def best(fn):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    small = [value.remote(i) for i in range(k)]
    rt.get(small)
    stored = [rt.put(np.full(200_000 // 8, i, dtype=np.int64)) for i in range(k)]
    rt.get(stored)
    out = {"runtime": runtime, "refs": k,
           "get_small_ms": best(lambda: rt.get(small)) * 1e3,
           "wait_small_ms": best(lambda: rt.wait(small, num_returns=k)) * 1e3,
           "get_shm_ms": best(lambda: rt.get(stored)) * 1e3,
           "wait_shm_ms": best(lambda: rt.wait(stored, num_returns=k)) * 1e3,
           "open_fds": len(os.listdir("/proc/self/fd"))}
    print(json.dumps({key: round(v, 3) if isinstance(v, float) else v for key, v in out.items()}))
    rt.shutdown()
""")

ACTORS = PREAMBLE + textwrap.dedent("""
    n = size

    @rt.remote(num_cpus=0)
    class Idle:
        def ping(self):
            return 1

    rt.get([rt.remote(lambda: 1).remote() for _ in range(10)])
    time.sleep(2)
    before = cluster_pss()
    t0 = time.perf_counter()
    actors = [Idle.remote() for _ in range(n)]
    rt.get([a.ping.remote() for a in actors])
    created = time.perf_counter() - t0
    time.sleep(2)
    per_actor = (cluster_pss() - before) / n
    print(json.dumps({"runtime": runtime, "actors": n, "create_s": round(created, 2),
                      "actors_per_s": round(n / created, 1), "pss_mb_per_actor": round(per_actor / 2**20, 2)}))
    rt.shutdown()
""")

ENVELOPE = PREAMBLE + textwrap.dedent("""
    import numpy as np
    import importlib
    util = importlib.import_module(rt.__name__ + ".util")

    @rt.remote
    def count(*args):
        return len(args)

    @rt.remote
    def value(i):
        return i

    def many(n):
        return tuple(range(n))

    out = {"runtime": runtime}
    refs = [value.remote(i) for i in range(10_000)]
    rt.get(refs)
    t0 = time.perf_counter()
    assert rt.get(count.remote(*refs)) == 10_000
    out["args_10000_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    returns = rt.remote(num_returns=3000)(many).remote(3000)
    assert rt.get(returns[-1]) == 2999 and len(rt.get(returns)) == 3000
    out["returns_3000_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    groups = [util.placement_group([{"CPU": 0.001}]) for _ in range(1000)]
    rt.get([g.ready() for g in groups])
    out["placement_groups_1000_s"] = time.perf_counter() - t0
    for g in groups:
        util.remove_placement_group(g)
    big = np.ones(4 << 30, dtype=np.uint8)
    t0 = time.perf_counter()
    ref = rt.put(big)
    out["put_4gib_s"] = time.perf_counter() - t0
    del big
    t0 = time.perf_counter()
    got = rt.get(ref)
    assert got.nbytes == 4 << 30 and got[-1] == 1
    out["get_4gib_s"] = time.perf_counter() - t0
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))
    rt.shutdown()
""")

SCRIPTS = {"queue": QUEUE, "refs": REFS, "actors": ACTORS, "envelope": ENVELOPE}


def run_point(python: str, curve: str, runtime: str, size: int, store: int | None = None) -> dict:
    argv = [python, "-c", SCRIPTS[curve], runtime, str(size)] + ([str(store)] if store else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"runtime": runtime, "curve": curve, "size": size, "returncode": done.returncode,
                "error": done.stderr[-2000:]}
    return json.loads(lines[-1])


# curve -> (x key, [(y key, panel title)]); the envelope is a table, not a curve.
PANELS = {
    "queue": ("depth", [("submit_per_s", "submit rate (tasks/s)"), ("drain_per_s", "drain rate (tasks/s)"),
                        ("bytes_per_queued_task", "driver + raylet bytes per queued task")]),
    "refs": ("refs", [("get_small_ms", "get, small values (ms)"), ("wait_small_ms", "wait, small values (ms)"),
                      ("get_shm_ms", "get, 200 KB shared-memory values (ms)"),
                      ("wait_shm_ms", "wait, 200 KB shared-memory values (ms)")]),
    "actors": ("actors", [("create_s", "time to create and ready (s)"),
                          ("pss_mb_per_actor", "cluster PSS per live actor (MB)")]),
}
DEFAULT_SIZES = {"queue": "1000,10000,100000,1000000", "refs": "10,100,1000,10000", "actors": "10,100,1000",
                 "envelope": "0"}


def plot(curve: str, points: list[dict], png: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key, panels = PANELS[curve]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2))
    for runtime, style in (("ember", "o-"), ("ray", "s--")):
        mine = sorted((p for p in points if p["runtime"] == runtime and "error" not in p), key=lambda p: p[x_key])
        if mine:
            for ax, (y_key, _title) in zip(axes, panels):
                ax.plot([p[x_key] for p in mine], [p[y_key] for p in mine], style, label=runtime)
    for ax, (_y_key, title) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel(x_key)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curve", choices=list(SCRIPTS))
    parser.add_argument("--sizes", help="the points (depths, ref counts, actor counts), comma-separated")
    parser.add_argument("--ray-python", default=os.environ.get("EMBER_BENCH_RAY_PYTHON"))
    parser.add_argument("--ray-max", type=int, default=None,
                        help="largest point to try on Ray (default: 100,000 queued tasks, 100 actors)")
    parser.add_argument("--png", type=pathlib.Path, help="default: bench/scale_CURVE.png")
    args = parser.parse_args()
    ray_max = args.ray_max or {"queue": 100_000, "actors": 100}.get(args.curve, 10**9)
    # The envelope's 4 GiB object needs a store that holds it.
    store = 6 << 30 if args.curve == "envelope" else None
    points = []
    for size in (int(x) for x in (args.sizes or DEFAULT_SIZES[args.curve]).split(",")):
        runs = [(sys.executable, "ember")]
        if args.ray_python and size <= ray_max:
            runs.append((args.ray_python, "ray"))
        for python, runtime in runs:
            point = run_point(python, args.curve, runtime, size, store)
            print(json.dumps(point), flush=True)
            points.append(point)
    if args.curve in PANELS:
        png = args.png or HERE / f"scale_{args.curve}.png"
        plot(args.curve, points, png)
        print(json.dumps({"png": str(png)}))


if __name__ == "__main__":
    main()
