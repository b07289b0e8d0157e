"""A driver that submits far faster than the node runs: N no-op tasks
submitted in one loop, then got, with the raylet's max_queued_tasks at a
small limit and at its default (a fifth of node memory: no hold below
millions). Reports, per setting: submit time, total time, the drain rate,
the most tasks the raylet kept at once (sampled), and the peak PSS of the
driver and the raylet together (sampled every 0.2 s).

    python bench/backpressure.py --tasks 1000000 --limit 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

DRIVER = textwrap.dedent("""
    import json, os, sys, threading, time
    import psutil
    import ember
    n = int(sys.argv[1])
    ember.init(num_cpus=2)
    raylet = next(p for p in psutil.Process().children(recursive=True) if "ember_raylet" in " ".join(p.cmdline()))
    me = psutil.Process()
    peak = {"pss": 0}
    done = threading.Event()
    def sample():
        while not done.is_set():
            try:
                pss = me.memory_full_info().pss + raylet.memory_full_info().pss
            except psutil.Error:
                pss = 0
            peak["pss"] = max(peak["pss"], pss)
            time.sleep(0.2)
    threading.Thread(target=sample, daemon=True).start()
    @ember.remote
    def noop():
        return None
    ember.get([noop.remote() for _ in range(1000)])  # workers warm
    t0 = time.perf_counter()
    refs = [noop.remote() for _ in range(n)]
    submitted = time.perf_counter() - t0
    ember.get(refs)
    total = time.perf_counter() - t0
    done.set()
    print(json.dumps({"tasks": n, "submit_s": round(submitted, 1), "total_s": round(total, 1),
                      "rate_per_s": round(n / total), "peak_pss_mb": round(peak["pss"] / 2**20)}))
    ember.shutdown()
""")


def run(tasks: int, limit: int | None) -> dict:
    env = {**os.environ}
    if limit:
        env["EMBER_MAX_QUEUED_TASKS"] = str(limit)
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tasks)], capture_output=True, text=True, env=env,
                          timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"the driver failed: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["max_queued_tasks"] = limit or "default"
    result["held"] = "max_queued_tasks" in done.stderr
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=100_000)
    args = parser.parse_args()
    for limit in (args.limit, None):
        print(json.dumps(run(args.tasks, limit)), flush=True)


if __name__ == "__main__":
    main()
