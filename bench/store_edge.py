"""The object store at the machine's edge (issue 15): a 100 MiB put against
the machine's copy rates (bench/ceilings.py) in the same process, `wait` on
1,000 ready refs against Ray, and one `get` of 10,000 stored objects.
Runs alternate (Ember, Ray, Ember, ...) so both see the same load.

    python bench/store_edge.py --ray-python /tmp/rayvenv/bin/python [--rounds 3]

prints JSON lines; the medians last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WAIT = textwrap.dedent("""
    import json, statistics, sys, time
    runtime = sys.argv[1]
    if runtime == "ray":
        import ray as rt
        rt.init(num_cpus=2, _node_ip_address="127.0.0.1")
    else:
        import ember as rt
        rt.init(num_cpus=2)
    def _small(x):
        return x
    small = rt.remote(_small)
    refs = [small.remote(i) for i in range(1000)]
    rt.get(refs)
    times = []
    for _ in range(200):
        t = time.perf_counter()
        ready, not_ready = rt.wait(refs, num_returns=1000, timeout=30)
        times.append(time.perf_counter() - t)
        assert len(ready) == 1000 and not not_ready
    print(json.dumps({"metric": "wait_1000_ready", "runtime": runtime, "ms": statistics.median(times) * 1e3}))
    rt.shutdown()
""")

PUT = textwrap.dedent("""
    import gc, json, statistics, sys, time
    sys.path.insert(0, sys.argv[2])
    import numpy as np
    from bench.ceilings import copy_100mb_ceilings
    runtime = sys.argv[1]
    if runtime == "ray":
        import ray as rt
        rt.init(num_cpus=2, _node_ip_address="127.0.0.1")
    else:
        import ember as rt
        rt.init(num_cpus=2)
    arr = np.ones(100 * 1024 * 1024 // 8, dtype=np.float64)
    ref = rt.put(arr); del ref; gc.collect()
    puts, fresh, touched = [], [], []
    for _ in range(5):  # the machine's copy rates and the put, alternating
        f, t_ = copy_100mb_ceilings(rounds=1)
        fresh.append(f["value"]); touched.append(t_["value"])
        for _ in range(2):
            t = time.perf_counter(); ref = rt.put(arr); puts.append(arr.nbytes / (time.perf_counter() - t) / 1e9)
            del ref; gc.collect()
    put, fr = statistics.median(puts), statistics.median(fresh)
    print(json.dumps({"metric": "put_100mb", "runtime": runtime, "gbs": put, "copy_fresh_gbs": fr,
                      "copy_touched_gbs": statistics.median(touched), "of_fresh": put / fr}))
    rt.shutdown()
""")

GET_MANY = textwrap.dedent("""
    import json, os, sys, time
    os.environ["EMBER_INLINE_THRESHOLD"] = "1024"
    import numpy as np, ember
    ember.init(num_cpus=1, object_store_memory=1 << 30)
    refs = [ember.put(np.full(512, i, dtype=np.int64)) for i in range(10_000)]
    fds = len(os.listdir("/proc/self/fd"))
    t = time.perf_counter()
    values = ember.get(refs)
    dt = time.perf_counter() - t
    assert all(v[0] == i for i, v in enumerate(values))
    print(json.dumps({"metric": "get_10000_stored", "runtime": "ember", "s": dt,
                      "fds_added": len(os.listdir("/proc/self/fd")) - fds}))
    ember.shutdown()
""")


def _run(python: str, code: str, *args: str) -> dict:
    done = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ray-python", default=os.environ.get("EMBER_BENCH_RAY_PYTHON"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    waits: dict[str, list[float]] = {"ember": [], "ray": []}
    puts: list[dict] = []
    for _ in range(a.rounds):
        for runtime, python in (("ember", sys.executable), ("ray", a.ray_python)):
            if python is None:
                continue
            out = _run(python, WAIT, runtime)
            print(json.dumps(out), flush=True)
            if "ms" in out:
                waits[runtime].append(out["ms"])
        out = _run(sys.executable, PUT, "ember", ROOT)
        print(json.dumps(out), flush=True)
        if "gbs" in out:
            puts.append(out)
    out = _run(sys.executable, GET_MANY)
    print(json.dumps(out), flush=True)
    summary: dict = {"load_1min": os.getloadavg()[0]}
    if waits["ember"]:
        summary["wait_1000_ready_ms"] = {k: statistics.median(v) for k, v in waits.items() if v}
        if waits["ray"]:
            summary["wait_vs_ray"] = statistics.median(waits["ray"]) / statistics.median(waits["ember"])
    if puts:
        summary["put_100mb_gbs"] = statistics.median(p["gbs"] for p in puts)
        summary["copy_fresh_gbs"] = statistics.median(p["copy_fresh_gbs"] for p in puts)
        summary["copy_touched_gbs"] = statistics.median(p["copy_touched_gbs"] for p in puts)
        summary["put_of_fresh"] = statistics.median(p["of_fresh"] for p in puts)
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
