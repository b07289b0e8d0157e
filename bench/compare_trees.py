"""Two Ember trees on the same micro workloads, run after run alternately:
for a change's cost when the machine's load moves more between runs than
the change does (bench/run.py's ratios against Ray move with it).

    python bench/compare_trees.py --python /tmp/ember-before/bin/python \\
        --python /tmp/ember-after/bin/python [--rounds 8]

Each interpreter has one tree installed (`pip install .` of a checkout in a
virtualenv of its own). Each round runs every interpreter once, in order,
in a fresh driver with a private cluster (2 CPUs): sync tasks (submit one,
get it), async tasks (4,000 submitted, then get), async actor calls (4,000,
then get) and small puts. Prints one JSON line per run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

WORKLOAD = r"""
import json, sys, time
import ember
ember.init(num_cpus=2)

@ember.remote
def f(x):
    return x

@ember.remote
class Echo:
    async def f(self, x):
        return x

echo = Echo.remote()
ember.get([f.remote(1) for _ in range(200)]); ember.get(echo.f.remote(1))

def rate(run, n):
    start = time.perf_counter()
    run(n)
    return round(n / (time.perf_counter() - start))

print(json.dumps({
    "sync_tasks": rate(lambda n: [ember.get(f.remote(1)) for _ in range(n)], 1500),
    "async_tasks": rate(lambda n: ember.get([f.remote(1) for _ in range(n)]), 4000),
    "async_actor_calls": rate(lambda n: ember.get([echo.f.remote(1) for _ in range(n)]), 4000),
    "small_puts": rate(lambda n: [ember.put(1) for _ in range(n)], 20000),
}))
ember.shutdown()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", action="append", required=True, help="an interpreter with one tree installed")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, list[dict[str, int]]] = {python: [] for python in args.python}
    with tempfile.TemporaryDirectory() as sessions:
        env = {**os.environ, "EMBER_SESSION_ROOT": sessions}
        for round_ in range(args.rounds):
            for python in args.python:
                done = subprocess.run([python, "-c", WORKLOAD], capture_output=True, text=True, timeout=300,
                                      env=env, cwd=sessions)
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                results[python].append(figures)
                print(json.dumps({"python": python, "round": round_, **figures}), flush=True)
    for python, runs in results.items():
        medians = {metric: statistics.median(run[metric] for run in runs) for metric in runs[0]}
        print(json.dumps({"python": python, "median": medians}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
