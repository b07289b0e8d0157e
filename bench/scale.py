"""Cost as work grows: each point one fresh cluster on this machine, Ember
and (with --ray-python) Ray 2.60 beside it, alternating.

    python bench/scale.py queue [--depths 1000,10000,100000,1000000] [--ray-python PATH]
                                [--ray-max-depth N] [--png bench/scale_queue.png]

`queue`: two tasks hold both CPUs while N no-op tasks are submitted, so all
N are queued; then the two let go and all N are got. Per depth: the submit
rate, the memory per queued task in the driver and the raylet together
(PSS after submission less PSS before, over N), and the drain rate (release
to the last result). A depth under 10,000 is run in rounds until 10,000
tasks went through, so its rates are not one blink. Prints one JSON line per
point and writes a PNG of the curves (matplotlib).
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

POINT = textwrap.dedent("""
    import gc, json, os, sys, tempfile, time
    import psutil
    runtime, depth = sys.argv[1], int(sys.argv[2])
    if runtime == "ray":
        import ray as rt
        rt.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
        is_raylet = lambda p: p.name() == "raylet"
    else:
        import ember as rt
        rt.init(num_cpus=2)
        is_raylet = lambda p: "ember_raylet" in " ".join(p.cmdline())
    me = psutil.Process()
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


def run_point(python: str, runtime: str, depth: int) -> dict:
    done = subprocess.run([python, "-c", POINT, runtime, str(depth)], capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        return {"runtime": runtime, "depth": depth, "error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot_queue(points: list[dict], png: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for runtime, style in (("ember", "o-"), ("ray", "s--")):
        mine = sorted((p for p in points if p["runtime"] == runtime and "error" not in p), key=lambda p: p["depth"])
        if not mine:
            continue
        depths = [p["depth"] for p in mine]
        axes[0].plot(depths, [p["submit_per_s"] for p in mine], style, label=runtime)
        axes[1].plot(depths, [p["drain_per_s"] for p in mine], style, label=runtime)
        axes[2].plot(depths, [p["bytes_per_queued_task"] / 1024 for p in mine], style, label=runtime)
    for ax, title in zip(axes, ("submit rate (tasks/s)", "drain rate (tasks/s)",
                                "driver + raylet memory per queued task (KiB)")):
        ax.set_xscale("log")
        ax.set_xlabel("tasks queued")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[2].axhline(1.0, color="grey", linewidth=0.8)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curve", choices=["queue"])
    parser.add_argument("--depths", default="1000,10000,100000,1000000")
    parser.add_argument("--ray-python", default=os.environ.get("EMBER_BENCH_RAY_PYTHON"))
    parser.add_argument("--ray-max-depth", type=int, default=100_000,
                        help="deepest queue to try on Ray (its drain at 1,000,000 takes many minutes here)")
    parser.add_argument("--png", type=pathlib.Path, default=HERE / "scale_queue.png")
    args = parser.parse_args()
    points = []
    for depth in (int(d) for d in args.depths.split(",")):
        runs = [(sys.executable, "ember")]
        if args.ray_python and depth <= args.ray_max_depth:
            runs.append((args.ray_python, "ray"))
        for python, runtime in runs:
            point = run_point(python, runtime, depth)
            print(json.dumps(point), flush=True)
            points.append(point)
    plot_queue(points, args.png)
    print(json.dumps({"png": str(args.png)}))


if __name__ == "__main__":
    main()
