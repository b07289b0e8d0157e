"""Recursive tasks, as Ray tutorials write them: every level waits on the
next with ray.get inside a task (fib(15) is 1973 tasks on 2 CPUs)."""

import ember as ray


@ray.remote
def fib(n):
    if n < 2:
        return n
    return sum(ray.get([fib.remote(n - 1), fib.remote(n - 2)]))


@ray.remote
def quicksort(values):
    if len(values) <= 16:
        return sorted(values)
    pivot = values[len(values) // 2]
    lower = quicksort.remote([v for v in values if v < pivot])
    upper = quicksort.remote([v for v in values if v > pivot])
    same = [v for v in values if v == pivot]
    return ray.get(lower) + same + ray.get(upper)


if __name__ == "__main__":
    ray.init(num_cpus=2)
    assert ray.get(fib.remote(15)) == 610
    import random

    values = [random.randrange(10_000) for _ in range(2_000)]
    assert ray.get(quicksort.remote(values)) == sorted(values)
    ray.shutdown()
    print("recursion OK: fib(15) = 610, quicksort of 2000 values")
