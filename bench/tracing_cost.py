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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=500)
    parser.add_argument("--traced", choices=["always_on", "always_off"])
    parser.add_argument("--driver-span", action="store_true", help="measure inside a driver span (traced only)")
    args = parser.parse_args()
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
