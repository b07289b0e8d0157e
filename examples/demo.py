"""Ember's demo workload: a private local cluster, thousands of tasks,
nested tasks, a large object through shared memory, and an error.

    python examples/demo.py
"""

from __future__ import annotations

import random
import time

import ember


@ember.remote
def sample(n: int, seed: int) -> int:
    """Monte Carlo: how many of n random points fall inside the unit circle."""
    rng = random.Random(seed)
    return sum(1 for _ in range(n) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)


@ember.remote
def square(x: int) -> int:
    return x * x


@ember.remote
def sum_of_squares(n: int) -> int:
    # Tasks can submit tasks: this one fans out and gathers.
    return sum(ember.get([square.remote(i) for i in range(n)]))


@ember.remote
def checksum(blob: bytes) -> int:
    return sum(blob[::4099])


@ember.remote
def divide(a: float, b: float) -> float:
    return a / b


@ember.remote
class Accumulator:
    """An actor: state that lives between calls."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, x: int) -> int:
        self.total += x
        return self.total


def main() -> None:
    t0 = time.perf_counter()
    ember.init()
    print(f"cluster up in {time.perf_counter() - t0:.2f}s: {ember.cluster_resources()}")

    t = time.perf_counter()
    counts = ember.get([sample.remote(20_000, seed) for seed in range(200)])
    pi = 4 * sum(counts) / (20_000 * 200)
    print(f"pi ~ {pi:.4f} from 200 tasks in {time.perf_counter() - t:.2f}s")

    t = time.perf_counter()
    total = sum(ember.get([square.remote(i) for i in range(5000)]))
    print(f"5000 small tasks in {time.perf_counter() - t:.2f}s (sum of squares {total})")

    print(f"nested: sum of squares below 100 = {ember.get(sum_of_squares.remote(100))}")

    blob = bytes(range(256)) * (64 * 1024 * 4)  # 64 MiB, through shared memory
    t = time.perf_counter()
    ref = ember.put(blob)
    print(f"64 MiB object stored in {time.perf_counter() - t:.3f}s; checksum from a task: "
          f"{ember.get(checksum.remote(ref))}")

    try:
        ember.get(divide.remote(1, 0))
    except ZeroDivisionError as e:  # the remote error is also the original type
        print(f"remote error caught as ZeroDivisionError: {e.cause!r}")

    t = time.perf_counter()
    acc = Accumulator.remote()
    running = ember.get([acc.add.remote(i) for i in range(1, 1001)])  # one caller: in order
    pool = ember.util.ActorPool([Accumulator.remote() for _ in range(4)])
    mapped = list(pool.map(lambda a, v: a.add.remote(v), range(8)))
    print(f"actors: running total {running[-1]} after 1000 ordered calls; pool of 4 mapped "
          f"{len(mapped)} values in {time.perf_counter() - t:.2f}s")

    ember.shutdown()
    print(f"done in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
