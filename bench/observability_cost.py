"""What observability costs end to end (issue 16's cost budgets), in one
invocation: one cluster per setting, all up at once, driven in short
bursts by turns, so that each setting's burst and off's run under the same
load of the shared machine.

    python bench/observability_cost.py [--rounds 30] [--scale 1.0]
        [--settings off,metrics+events,tracing 0%,tracing 100%] [--python PY ...]

Settings (each against "off", the issue's "run with all of it off"):

- off: EMBER_METRICS_ENABLED=0, EMBER_TASK_EVENTS_ENABLED=0, no OTEL_*
- metrics+events: both on (the default), no OTEL_*; budget 5%
- tracing 0%: metrics and events off, OTLP on, OTEL_TRACES_SAMPLER=
  parentbased_traceidratio 0, inside a (so unsampled) driver span; budget 5%
- tracing 100%: the same at parentbased_always_on (every task's trace
  sampled, under a sampled driver span); budget 25%

Workloads (each cluster: 2 CPUs, one actor with a sync method): sync tasks
(submit one, get it), async tasks (a batch submitted, then one get), sync
actor calls, async actor calls (likewise). A round runs one burst of each
workload on every cluster in turn (the order rotating round by round). A
burst reports its wall time and the CPU seconds of its cluster's driver,
raylet, workers (the actor's included) and the rest (GCS, object store,
zygote): the scheduler's run time of every live thread, from
/proc/PID/task/*/schedstat, in ns (export threads count where they run;
/proc's utime and stime count 10 ms ticks, too coarse for a burst).

Per setting and workload it prints the median burst rate and the CPU
seconds per 1,000 calls (all bursts' CPU over all their calls), and
against off the median over rounds of the paired ratios (this round's
burst against off's burst of the same round: the figure that cancels the
machine's load best). Spans go to a sink in this process (an OTLP/gRPC
endpoint that reads nothing): a collector's work is not the cluster's.

With --python given more than once (interpreters each with one tree
installed, as bench/compare_trees.py), every tree runs every setting, and
each tree is compared with its own off.
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
WORKLOADS = {"sync_tasks": 300, "async_tasks": 2000, "sync_actor_calls": 600, "async_actor_calls": 3000}  # calls a burst
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
    """CPU seconds of a process's live threads, to the nanosecond."""
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


class _Tree:
    """This driver's cluster's processes by role (found once, after the
    warm-up; looked for again if one is gone)."""

    def __init__(self) -> None:
        self.pids: dict[int, str] = {}
        self.refresh()

    def refresh(self) -> None:
        import psutil

        me = psutil.Process()
        pids = {}
        for p in [me, *me.children(recursive=True)]:
            try:
                pids[p.pid] = _role(p, me.pid)
            except psutil.Error:
                pass
        self.pids = pids

    def cpu(self) -> dict[str, float]:
        out = dict.fromkeys(ROLES, 0.0)
        for pid, role in self.pids.items():
            out[role] += _cpu_s(pid)
        return out


def child(scale: float) -> None:
    """One cluster at the setting its environment says; runs the bursts
    asked for on stdin ("WORKLOAD", one a line; "quit"), answering each
    with a JSON line on stdout."""
    import contextlib

    import ember

    @ember.remote
    def task() -> None:
        return None

    @ember.remote
    class Actor:
        def call(self) -> None:
            return None

    ember.init(num_cpus=2)
    actor = Actor.remote()
    for _ in range(2):  # warm: workers up, functions fetched, the actor's direct channel open
        ember.get([task.remote() for _ in range(300)] + [actor.call.remote() for _ in range(300)])
        for _ in range(50):
            ember.get(task.remote())
            ember.get(actor.call.remote())
    runs: dict[str, Callable[[int], Any]] = {
        "sync_tasks": lambda n: [ember.get(task.remote()) for _ in range(n)],
        "async_tasks": lambda n: ember.get([task.remote() for _ in range(n)]),
        "sync_actor_calls": lambda n: [ember.get(actor.call.remote()) for _ in range(n)],
        "async_actor_calls": lambda n: ember.get([actor.call.remote() for _ in range(n)]),
    }
    span: Any = contextlib.nullcontext()
    if "OTEL_TRACES_SAMPLER" in os.environ:
        from opentelemetry import trace

        span = trace.get_tracer("bench").start_as_current_span("bench")
    tree = _Tree()
    print(json.dumps({"ready": True}), flush=True)
    with span:
        for line in sys.stdin:
            name = line.strip()
            if name == "quit":
                break
            n = max(1, int(WORKLOADS[name] * scale))
            if any(not os.path.exists(f"/proc/{pid}") for pid in tree.pids):
                tree.refresh()
            cpu0, t0 = tree.cpu(), time.perf_counter()
            runs[name](n)
            t1, cpu1 = time.perf_counter(), tree.cpu()
            print(json.dumps({"n": n, "wall_s": t1 - t0, "cpu_s": {r: cpu1[r] - cpu0[r] for r in ROLES}}), flush=True)
    ember.shutdown()


def _summary(bursts: list[dict[str, Any]]) -> dict[str, float]:
    calls = sum(b["n"] for b in bursts)
    out = {"rate": statistics.median(b["n"] / b["wall_s"] for b in bursts),
           "cpu_s_per_1k": sum(sum(b["cpu_s"].values()) for b in bursts) / calls * 1000}
    for r in ROLES:
        out[f"cpu_s_per_1k_{r}"] = sum(b["cpu_s"][r] for b in bursts) / calls * 1000
    return out


def _paired_pct(bursts: list[dict[str, Any]], off: list[dict[str, Any]]) -> tuple[float, float]:
    """Median over rounds of (this burst / off's burst of the same round - 1), in %: rate, CPU per call."""
    rate = [(b["n"] / b["wall_s"]) / (o["n"] / o["wall_s"]) - 1 for b, o in zip(bursts, off)]
    cpu = [(sum(b["cpu_s"].values()) / b["n"]) / (sum(o["cpu_s"].values()) / o["n"]) - 1 for b, o in zip(bursts, off)]
    return statistics.median(rate) * 100, statistics.median(cpu) * 100


def _reply(proc: "subprocess.Popen[str]", field: str) -> dict[str, Any] | None:
    """The child's next JSON line holding `field` (anything else it printed skipped); None if it ended."""
    for line in proc.stdout:  # type: ignore[union-attr]
        try:
            got = json.loads(line)
        except ValueError:
            continue
        if isinstance(got, dict) and field in got:
            return got
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--scale", type=float, default=1.0, help="calls a burst x this")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="which settings, comma-separated")
    parser.add_argument("--python", action="append", help="an interpreter with one tree installed (repeatable)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.scale)
        return 0
    settings = args.settings.split(",")
    pythons = args.python or [sys.executable]
    sink, endpoint, taken = _otlp_sink()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("OTEL_") and k not in ("EMBER_METRICS_ENABLED", "EMBER_TASK_EVENTS_ENABLED")}
    here = str(pathlib.Path(__file__).resolve())
    clusters: dict[tuple[str, str], subprocess.Popen[str]] = {}
    for python in pythons:
        for setting in settings:
            env = {**base, **SETTINGS[setting]}
            if "OTEL_TRACES_SAMPLER" in env:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            proc = subprocess.Popen([python, here, "--child", "--scale", str(args.scale)], env=env, text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            clusters[(python, setting)] = proc
    for key, proc in clusters.items():  # (all warm before the first burst)
        if _reply(proc, "ready") is None:
            print(f"{key}: the cluster did not start", file=sys.stderr)
            return 1
    bursts: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    load_before = os.getloadavg()
    started = time.time()
    keys = list(clusters)
    try:
        for r in range(args.rounds):
            for w in WORKLOADS:
                order = keys[r % len(keys):] + keys[:r % len(keys)]
                for key in order:
                    proc = clusters[key]
                    proc.stdin.write(w + "\n")  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                    got = _reply(proc, "n")
                    if got is None:
                        raise RuntimeError(f"{key}: the cluster's driver ended")
                    bursts.setdefault((*key, w), []).append(got)
            print(json.dumps({"round": r, "load": round(os.getloadavg()[0], 2)}), flush=True)
    finally:
        for proc in clusters.values():
            try:
                proc.stdin.write("quit\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except OSError:
                pass
        for proc in clusters.values():
            proc.wait(timeout=60)
        sink.stop(None)
    print(json.dumps({"rounds": args.rounds, "scale": args.scale, "seconds": round(time.time() - started),
                      "load_before": [round(x, 2) for x in load_before],
                      "load_after": [round(x, 2) for x in os.getloadavg()], "otlp_bytes": taken[0]}))
    for python in pythons:
        for setting in settings:
            for w in WORKLOADS:
                mine = bursts[(python, setting, w)]
                out: dict[str, Any] = {"setting": setting, "workload": w,
                                       **{k: round(v, 4) for k, v in _summary(mine).items()}}
                if len(pythons) > 1:
                    out["python"] = python
                if setting != "off" and (python, "off", w) in bursts:
                    rate_pct, cpu_pct = _paired_pct(mine, bursts[(python, "off", w)])
                    out.update(rate_vs_off_pct=round(rate_pct, 1), cpu_vs_off_pct=round(cpu_pct, 1))
                    budget = BUDGET_PCT.get(setting)
                    if budget is not None:
                        out.update(budget_pct=budget, cpu_within_budget=cpu_pct <= budget,
                                   rate_within_budget=rate_pct >= -budget)
                print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
