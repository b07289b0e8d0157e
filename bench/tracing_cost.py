"""What tracing costs per task in Python calls (cProfile, exact; times on
a shared machine are not to be trusted): a driver's task submission, its
actor-call submission, its get of a ready object, and a worker's main
thread running the task, on a private 1-CPU cluster.

    python bench/tracing_cost.py [N]                       # as the environment says (off: no OTEL_*)
    python bench/tracing_cost.py --traced always_on [N]    # on, to a local OTLP receiver (tests/otlp_receiver.py)
    python bench/tracing_cost.py --traced always_off [N]   # on, 0% sampling
    ... --traced always_off --driver-span [N]              # the same inside a (so unsampled) driver span

Each figure is the difference between runs of 2N and N tasks, divided by
N: what one more task costs, without the fixed costs around the runs.
Run it with another tree's interpreter (a venv with that tree installed)
to compare trees.

    python bench/tracing_cost.py --alternate ROUNDS [N]    # off, 0%, 100% by turns: rates and CPU per task
    python bench/tracing_cost.py --raylet [N]              # the raylet's calls per task: off, 0%, 100%

The raylet's figure runs its node manager in-process (real, with fake
worker processes: bench/task_events_cost.py) on tasks whose traceparent
is absent (off), unsampled or sampled, with the service's spans on for
the last two (exported to nowhere: the export thread is not counted).

The alternating mode runs, ROUNDS times, one fresh cluster per setting in
turn (off; on at 0% = parentbased_traceidratio 0; on at 100% =
parentbased_always_on, each task's trace sampled under a driver span):
N tasks submitted then got at once, then N sync tasks, and reports the
medians of the async and sync task rates and of the CPU time per task of
every process of the cluster (driver, GCS, raylet, store, workers,
export threads included; from /proc, so the machine's load matters less
than to the rates).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pathlib
import pstats
import sys
from typing import Any, Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _calls(run: Callable[[], Any]) -> int:
    profile = cProfile.Profile()
    profile.runcall(run)
    return pstats.Stats(profile).total_calls  # type: ignore[attr-defined]


SETTINGS = {  # the alternating mode's settings: OTEL_TRACES_SAMPLER, _ARG (None: off)
    "off": None,
    "0%": ("parentbased_traceidratio", "0"),
    "100%": ("parentbased_always_on", "1"),
}


def _cluster_cpu_s() -> float:
    """CPU seconds so far of this process and every process under it."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass  # (a worker gone meanwhile: its time is lost to both sides alike)
    return total


def rates_child(setting: str, n: int) -> None:
    """One cluster at one setting: async and sync task rates and CPU per task, as JSON."""
    import time

    traced = SETTINGS[setting] is not None
    if traced:  # (the collector, a sink, is the parent's: its work is not the cluster's)
        os.environ["OTEL_TRACES_SAMPLER"], os.environ["OTEL_TRACES_SAMPLER_ARG"] = SETTINGS[setting]
    else:
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    import contextlib

    import ember

    @ember.remote
    def task() -> None:
        return None

    ember.init(num_cpus=2)
    ember.get([task.remote() for _ in range(200)])  # warm: workers up, the function fetched
    span: Any = contextlib.nullcontext()
    if traced:
        from opentelemetry import trace

        span = trace.get_tracer("bench").start_as_current_span("bench")
    with span:
        cpu0, t0 = _cluster_cpu_s(), time.perf_counter()
        ember.get([task.remote() for _ in range(n)])
        t1 = time.perf_counter()
        for _ in range(n // 4):
            ember.get(task.remote())
        t2, cpu1 = time.perf_counter(), _cluster_cpu_s()
    print(json.dumps({"setting": setting, "async_rate": n / (t1 - t0), "sync_rate": (n // 4) / (t2 - t1),
                      "cpu_us_per_task": (cpu1 - cpu0) / (n + n // 4) * 1e6}))
    ember.shutdown()


def _otlp_sink() -> tuple[Any, str, list[int]]:
    """An OTLP/gRPC endpoint that takes every export and reads nothing of
    it (a collector's work is not the cluster's): server, endpoint, bytes taken."""
    import concurrent.futures

    import grpc

    taken = [0]

    def export(request: bytes, _context: Any) -> bytes:
        taken[0] += len(request)
        return b""  # (an empty ExportTraceServiceResponse)

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"http://127.0.0.1:{port}", taken


def alternate(rounds: int, n: int) -> None:
    import statistics
    import subprocess

    got: dict[str, list[dict[str, float]]] = {s: [] for s in SETTINGS}
    sink, endpoint, taken = _otlp_sink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    for r in range(rounds):
        for setting in SETTINGS:
            out = subprocess.run([sys.executable, __file__, "--rates-child", setting, str(n)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            got[setting].append(row)
            print(json.dumps({"round": r, **row}), flush=True)
    base = {k: statistics.median(row[k] for row in got["off"]) for k in ("async_rate", "sync_rate", "cpu_us_per_task")}
    for setting, rows in got.items():
        med = {k: statistics.median(row[k] for row in rows) for k in base}
        print(json.dumps({"setting": setting, "rounds": rounds, "n": n, **{k: round(v, 1) for k, v in med.items()},
                          **{f"{k}_vs_off_pct": round((med[k] / base[k] - 1) * 100, 1) for k in base}}))
    print(json.dumps({"otlp_bytes_exported": taken[0]}))
    sink.stop(None)


def raylet_calls(n: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from task_events_cost import _node, _run

    from ember_common import service_spans

    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    for setting, traceparent in (("off", ""), ("0%", f"00-{trace_id}-{parent}-00"), ("100%", f"00-{trace_id}-{parent}-01")):
        if traceparent:
            service_spans.configure("ember-raylet", {}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                                         "OTEL_BSP_SCHEDULE_DELAY": "3600000"})
        nm, driver, workers = _node(False)
        profile = cProfile.Profile()
        profile.runcall(_run, nm, driver, workers, n, traceparent)
        print(json.dumps({"where": "raylet task", "traced": setting,
                          "python_calls_per_task": round(pstats.Stats(profile).total_calls / n, 1)}))  # type: ignore[attr-defined]
        service_spans.active = None  # (its spans stay unsent: nothing listens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=500)
    parser.add_argument("--traced", choices=["always_on", "always_off"])
    parser.add_argument("--driver-span", action="store_true", help="measure inside a driver span (traced only)")
    parser.add_argument("--alternate", type=int, metavar="ROUNDS", help="rates and CPU per task, settings by turns")
    parser.add_argument("--rates-child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--raylet", action="store_true", help="the raylet's calls per task")
    args = parser.parse_args()
    if args.raylet:
        raylet_calls(args.n)
        return
    if args.alternate:
        alternate(args.alternate, args.n)
        return
    if args.rates_child:
        rates_child(args.rates_child, args.n)
        return
    receiver = None
    if args.traced:
        sys.path.insert(0, str(ROOT))
        from tests.otlp_receiver import OtlpReceiver

        receiver = OtlpReceiver().start()
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        os.environ["OTEL_TRACES_SAMPLER"] = args.traced
    else:
        assert not any(k.startswith("OTEL_EXPORTER_OTLP") for k in os.environ), "unset OTEL_* for the off figures"

    import ember

    @ember.remote
    def task() -> None:
        return None

    @ember.remote
    class Actor:
        def call(self) -> None:
            return None

    @ember.remote
    def start_profile() -> None:
        import builtins

        profile = cProfile.Profile()
        builtins.__dict__["_bench_profile"] = profile
        profile.enable()  # the worker's main thread, from here on, across the tasks that follow
        import time

        time.sleep(1.0)  # while the tasks to measure queue up: then they run back to back (no idle loop)

    @ember.remote
    def stop_profile() -> int:
        import builtins

        profile = builtins.__dict__.pop("_bench_profile")
        profile.disable()
        return pstats.Stats(profile).total_calls  # type: ignore[attr-defined]

    ember.init(num_cpus=1)
    actor = Actor.remote()
    ember.get([task.remote() for _ in range(50)] + [actor.call.remote() for _ in range(50)])  # warm: functions fetched

    def per_task(measure: Callable[[int], int]) -> float:
        one, two = measure(args.n), measure(2 * args.n)
        return (two - one) / args.n

    def submit(n: int) -> int:
        refs: list[Any] = []
        calls = _calls(lambda: refs.extend(task.remote() for _ in range(n)))
        ember.get(refs)
        return calls

    def actor_submit(n: int) -> int:
        refs: list[Any] = []
        calls = _calls(lambda: refs.extend(actor.call.remote() for _ in range(n)))
        ember.get(refs)
        return calls

    def get_ready(n: int) -> int:
        refs = [task.remote() for _ in range(n)]
        ember.get(refs)
        return _calls(lambda: [ember.get(r) for r in refs])

    def worker(n: int) -> int:
        started = start_profile.remote()
        ember.get([started] + [task.remote() for _ in range(n)])
        return ember.get(stop_profile.remote())

    import contextlib

    span: Any = contextlib.nullcontext()
    if args.driver_span and args.traced:
        from opentelemetry import trace

        span = trace.get_tracer("bench").start_as_current_span("bench")
    with span:
        figures = {"driver submit": per_task(submit), "driver actor call submit": per_task(actor_submit),
                   "driver get (ready)": per_task(get_ready), "worker task": per_task(worker)}
    for where, calls in figures.items():
        print(json.dumps({"where": where, "traced": args.traced or "off", "driver_span": args.driver_span,
                          "python_calls_per_task": round(calls, 1)}))
    ember.shutdown()
    if receiver is not None:
        receiver.stop()


if __name__ == "__main__":
    main()
