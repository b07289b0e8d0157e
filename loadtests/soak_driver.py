"""The workload of the chaos soak (chaos_soak.py): a driver that, round
after round until its time is up, runs tasks, calls actors, puts and gets
large objects and makes placement groups, and checks every result.

Each outcome is counted by operation and kind: `ok` (the right value),
`typed` (an ember.exceptions error, by class: what Ray would raise), `lost`
(an error or a timeout where retries were still allowed: the work had
infinite retries, so nothing but the right value is acceptable) or `wrong`
(a value that is not the right one). The soak requires `lost` and `wrong`
to be 0. The report is JSON on the last line of stdout; the actors' worker
pids go to --pids after every round, for the fault injector to kill.

Run by chaos_soak.py: `python loadtests/soak_driver.py --address GCS --seconds S --pids FILE`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable

import numpy as np

import ember
from ember import exceptions
from ember.util import placement_group, remove_placement_group
from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

BLOCK = 8 << 20  # bytes in a large object: always in the shared-memory store
GET_TIMEOUT_S = 120.0  # longer than any recovery takes: a timeout is a loss
FAR = {"far": 0.01}  # the second node (the one the injector kills)


@ember.remote(max_retries=-1)
def square(x: int) -> int:
    return x * x


@ember.remote(max_retries=-1)
def checksum(block: np.ndarray) -> int:
    return int(block.sum(dtype=np.uint64))


@ember.remote(max_retries=-1)
def make_block(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=BLOCK, dtype=np.uint8)


@ember.remote(max_restarts=-1, max_task_retries=-1)
class Keeper:
    """A named actor that must outlive every fault: it restarts and its calls
    are retried. Its count starts over when it restarts (as in Ray)."""

    def __init__(self) -> None:
        self.n = 0

    def inc(self) -> int:
        self.n += 1
        return self.n

    def pid(self) -> int:
        return os.getpid()


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.examples: dict[str, str] = {}

    def check(self, operation: str, run: Callable[[], Any], right: Callable[[Any], bool],
              retries_allowed: bool = True) -> Any:
        try:
            value = run()
        except exceptions.GetTimeoutError as e:
            return self._count(operation, "lost", f"timed out: {e}")
        except exceptions.EmberError as e:
            kind = "lost" if retries_allowed else f"typed:{type(e).__name__}"
            return self._count(operation, kind, f"{type(e).__name__}: {str(e)[:300]}")
        except Exception as e:  # anything else is not what Ray would raise
            return self._count(operation, "wrong", f"{type(e).__name__}: {str(e)[:300]}")
        if not right(value):
            return self._count(operation, "wrong", f"value {str(value)[:100]}")
        self.counts[operation]["ok"] += 1
        return value

    def _count(self, operation: str, kind: str, example: str) -> None:
        self.counts[operation][kind] += 1
        self.examples.setdefault(f"{operation}/{kind}", example)
        print(f"{operation}: {kind}: {example}", file=sys.stderr, flush=True)
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--pids", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)

    ember.init(address=args.address, namespace="soak")
    keeper = Keeper.options(name="keeper", lifetime="detached").remote()
    far_keeper = Keeper.options(name="far-keeper", lifetime="detached", resources=FAR).remote()
    tally = Tally()
    rng = np.random.default_rng(0)
    print("running", flush=True)
    deadline = time.monotonic() + args.seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        xs = list(range(rounds, rounds + 20))
        refs = [square.remote(x) for x in xs] + [square.options(resources=FAR).remote(x) for x in xs[:5]]
        tally.check("tasks", lambda: ember.get(refs, timeout=GET_TIMEOUT_S),
                    lambda got: got == [x * x for x in xs] + [x * x for x in xs[:5]])
        tally.check("actor_calls", lambda: ember.get([keeper.inc.remote(), far_keeper.inc.remote()],
                                                     timeout=GET_TIMEOUT_S),
                    lambda got: all(isinstance(n, int) and n >= 1 for n in got))
        block = rng.integers(0, 256, size=BLOCK, dtype=np.uint8)
        expected = int(block.sum(dtype=np.uint64))
        ref = ember.put(block)
        tally.check("large_put_to_far_task", lambda: ember.get(checksum.options(resources=FAR).remote(ref),
                                                               timeout=GET_TIMEOUT_S),
                    lambda got: got == expected)
        seed = int(rng.integers(1 << 30))
        tally.check("large_get_from_far_task",
                    lambda: ember.get(make_block.options(resources=FAR).remote(seed), timeout=GET_TIMEOUT_S),
                    lambda got: np.array_equal(got, np.random.default_rng(seed).integers(0, 256, size=BLOCK,
                                                                                         dtype=np.uint8)))
        del block, ref
        if rounds % 5 == 1:
            def in_group() -> int:
                group = placement_group([{"CPU": 0.1}, {"CPU": 0.1}], strategy="PACK")
                try:
                    if not group.wait(GET_TIMEOUT_S):
                        raise exceptions.GetTimeoutError("the placement group was not reserved")
                    strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=1)
                    return ember.get(square.options(num_cpus=0.1, scheduling_strategy=strategy).remote(7),
                                     timeout=GET_TIMEOUT_S)
                finally:
                    remove_placement_group(group)
            tally.check("placement_groups", in_group, lambda got: got == 49)
        pids = tally.check("actor_pids", lambda: ember.get([keeper.pid.remote(), far_keeper.pid.remote()],
                                                           timeout=GET_TIMEOUT_S), lambda got: len(got) == 2)
        if pids:
            args.pids.write_text(json.dumps({"keeper": pids[0], "far-keeper": pids[1]}))
    # Named, detached actors survive every fault: found by name, answering.
    survivors = {}
    for name in ("keeper", "far-keeper"):
        survivors[name] = tally.check("named_actors_alive",
                                      lambda: ember.get(ember.get_actor(name).inc.remote(), timeout=GET_TIMEOUT_S),
                                      lambda got: isinstance(got, int)) is not None
    for name in ("keeper", "far-keeper"):
        ember.kill(ember.get_actor(name))
    report = {"rounds": rounds, "outcomes": {op: dict(c) for op, c in tally.counts.items()},
              "examples": tally.examples, "named_actors_alive": survivors}
    ember.shutdown()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
