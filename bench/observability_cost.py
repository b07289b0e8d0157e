"""What observability costs end to end (issue 16's cost budgets), in one
invocation: settings by turns, a fresh cluster each, on four workloads.

    python bench/observability_cost.py [--rounds 6] [--scale 1.0] [--python PY ...]

With --python given more than once (interpreters each with one tree
installed, as bench/compare_trees.py), every round runs every setting of
every tree, so two trees are compared under the same load.

Settings (each against "off", the issue's "run with all of it off"):

- off: EMBER_METRICS_ENABLED=0, EMBER_TASK_EVENTS_ENABLED=0, no OTEL_*
- metrics+events: both on (the default), no OTEL_*; budget 5%
- tracing 0%: metrics and events off, OTLP on, OTEL_TRACES_SAMPLER=
  parentbased_traceidratio 0, inside a (so unsampled) driver span; budget 5%
- tracing 100%: the same at parentbased_always_on (every task's trace
  sampled, under a sampled driver span); budget 25%

Workloads, in each cluster (2 CPUs, one actor with a sync method):
sync tasks (submit one, get it), async tasks (N submitted, then one get),
sync actor calls, async actor calls (likewise). For each: the wall rate
and the CPU seconds per 1,000 calls of the driver, the raylet, the
workers (the actor's included) and the rest (GCS, object store, zygote),
read from /proc before and after (the scheduler's per-thread run time, in ns;
export threads count where they run).
CPU is the steadier figure on a shared machine: the rates move with
whatever else runs. Spans go to a sink in this process (an OTLP/gRPC
endpoint that reads nothing): a collector's work is not the cluster's.

Rounds rotate the order of the settings, so no setting always runs first
or after the same one. Prints one JSON line per run, then per setting and
workload the medians and their change against off, and the load average
before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tracing_cost import _otlp_sink  # noqa: E402  (the sink endpoint: one copy)

SETTINGS: dict[str, dict[str, str]] = {
    "off": {"EMBER_METRICS_ENABLED": "0", "EMBER_TASK_EVENTS_ENABLED": "0"},
    "metrics+events": {"EMBER_METRICS_ENABLED": "1", "EMBER_TASK_EVENTS_ENABLED": "1"},
    "tracing 0%": {"EMBER_METRICS_ENABLED": "0", "EMBER_TASK_EVENTS_ENABLED": "0",
                   "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
    "tracing 100%": {"EMBER_METRICS_ENABLED": "0", "EMBER_TASK_EVENTS_ENABLED": "0",
                     "OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}
BUDGET_PCT = {"metrics+events": 5, "tracing 0%": 5, "tracing 100%": 25}
WORKLOADS = ("sync_tasks", "async_tasks", "sync_actor_calls", "async_actor_calls")
ROLES = ("driver", "raylet", "workers", "other")


def _role(p: Any, me: int) -> str:
    if p.pid == me:
        return "driver"
    cmd = " ".join(p.cmdline())
    if "ember_raylet.main" in cmd:
        return "raylet"
    if "worker_zygote" in cmd or "ember._private.worker" in cmd:
        try:  # the zygote is the raylet's child; its forks (the workers) are its children
            parent = " ".join(p.parent().cmdline())
        except Exception:
            parent = ""
        return "other" if "worker_zygote" in cmd and "ember_raylet" in parent else "workers"
    return "other"


def _cpu_s(pid: int) -> float:
    """CPU seconds of a process's live threads, to the nanosecond (the
    scheduler's run time, /proc/PID/task/*/schedstat: /proc's utime and
    stime count 10 ms ticks, too coarse for a few thousand calls)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # (a thread gone meanwhile)
    except OSError:
        pass  # (a process gone meanwhile: its time is lost to every setting alike)
    return total / 1e9


def _cpu_by_role() -> dict[str, float]:
    import psutil

    me = psutil.Process()
    out = dict.fromkeys(ROLES, 0.0)
    for p in [me, *me.children(recursive=True)]:
        try:
            role = _role(p, me.pid)
        except psutil.Error:
            continue
        out[role] += _cpu_s(p.pid)
    return out


def child(setting: str, scale: float) -> None:
    """One cluster at one setting: every workload's rate and CPU, as JSON."""
    import contextlib

    import ember

    @ember.remote
    def task() -> None:
        return None

    @ember.remote
    class Actor:
        def call(self) -> None:
            return None

    n_sync, n_async = int(1000 * scale), int(4000 * scale)
    ember.init(num_cpus=2)
    actor = Actor.remote()
    for _ in range(2):  # warm: workers up, functions fetched, the actor's direct channel open
        ember.get([task.remote() for _ in range(300)] + [actor.call.remote() for _ in range(300)])
        for _ in range(50):
            ember.get(task.remote())
            ember.get(actor.call.remote())

    runs: dict[str, Callable[[], int]] = {
        "sync_tasks": lambda: [ember.get(task.remote()) for _ in range(n_sync)] and n_sync,
        "async_tasks": lambda: ember.get([task.remote() for _ in range(n_async)]) and n_async,
        "sync_actor_calls": lambda: [ember.get(actor.call.remote()) for _ in range(n_sync)] and n_sync,
        "async_actor_calls": lambda: ember.get([actor.call.remote() for _ in range(n_async)]) and n_async,
    }
    span: Any = contextlib.nullcontext()
    if "OTEL_TRACES_SAMPLER" in os.environ:
        from opentelemetry import trace

        span = trace.get_tracer("bench").start_as_current_span("bench")
    row: dict[str, Any] = {"setting": setting}
    with span:
        for name, run in runs.items():
            cpu0, t0 = _cpu_by_role(), time.perf_counter()
            n = run()
            t1, cpu1 = time.perf_counter(), _cpu_by_role()
            row[name] = {"rate": round(n / (t1 - t0), 1),
                         **{f"cpu_s_per_1k_{r}": round((cpu1[r] - cpu0[r]) / n * 1000, 4) for r in ROLES},
                         "cpu_s_per_1k": round(sum(cpu1[r] - cpu0[r] for r in ROLES) / n * 1000, 4)}
    print(json.dumps(row), flush=True)
    ember.shutdown()


def _median_table(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    keys = ["rate", "cpu_s_per_1k", *(f"cpu_s_per_1k_{r}" for r in ROLES)]
    return {s: {w: {k: statistics.median(r[w][k] for r in runs) for k in keys} for w in WORKLOADS}
            for s, runs in rows.items() if runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--scale", type=float, default=1.0, help="calls per workload x this (1: 1,000 sync, 4,000 async)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="which settings, comma-separated")
    parser.add_argument("--python", action="append", help="an interpreter with one tree installed (repeatable)")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.scale)
        return 0
    settings = args.settings.split(",")
    pythons = args.python or [sys.executable]
    sink, endpoint, taken = _otlp_sink()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("OTEL_") and k not in ("EMBER_METRICS_ENABLED", "EMBER_TASK_EVENTS_ENABLED")}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {py: {s: [] for s in settings} for py in pythons}
    load_before = os.getloadavg()
    started = time.time()
    here = str(pathlib.Path(__file__).resolve())
    for r in range(args.rounds):
        order = settings[r % len(settings):] + settings[:r % len(settings)]
        for setting in order:
            for python in pythons:
                env = {**base, **SETTINGS[setting]}
                if "OTEL_TRACES_SAMPLER" in env:
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
                done = subprocess.run([python, here, "--child", setting, "--scale", str(args.scale)],
                                      env=env, capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows[python][setting].append(row)
                print(json.dumps({"round": r, "python": python, "load": round(os.getloadavg()[0], 2), **row}),
                      flush=True)
    sink.stop(None)
    print(json.dumps({"rounds": args.rounds, "scale": args.scale, "seconds": round(time.time() - started),
                      "load_before": [round(x, 2) for x in load_before],
                      "load_after": [round(x, 2) for x in os.getloadavg()], "otlp_bytes": taken[0]}))
    for python in pythons:
        medians = _median_table(rows[python])
        off = medians.get("off")
        for setting, table in medians.items():
            for w, m in table.items():
                out: dict[str, Any] = {"python": python, "setting": setting, "workload": w,
                                       **{k: round(v, 4) for k, v in m.items()}}
                if off is not None and setting != "off":
                    rate_pct = (m["rate"] / off[w]["rate"] - 1) * 100
                    cpu_pct = (m["cpu_s_per_1k"] / off[w]["cpu_s_per_1k"] - 1) * 100
                    out.update(rate_vs_off_pct=round(rate_pct, 1), cpu_vs_off_pct=round(cpu_pct, 1))
                    budget = BUDGET_PCT.get(setting)
                    if budget is not None:
                        out["budget_pct"] = budget
                        out["cpu_within_budget"] = cpu_pct <= budget
                        out["rate_within_budget"] = rate_pct >= -budget
                print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
