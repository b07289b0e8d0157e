"""A task graph built with bind() and run with execute(): a small pipeline
whose shared step runs once per execution, with an actor in it."""

import ember as ray
from ember.dag import InputNode, MultiOutputNode


@ray.remote
def load(source):
    return [len(word) for word in source.split()]


@ray.remote
def total(values):
    return sum(values)


@ray.remote
def longest(values):
    return max(values)


@ray.remote
def gather(refs):
    return sum(ray.get(refs))  # nodes nested in an argument arrive as refs


@ray.remote
class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def scale(self, value):
        return value * self.factor


if __name__ == "__main__":
    ray.init(num_cpus=2)
    with InputNode() as inp:
        lengths = load.bind(inp.text)  # shared by both branches: runs once per execute
        scaler = Scaler.bind(inp.factor)
        dag = MultiOutputNode([scaler.scale.bind(total.bind(lengths)), longest.bind(lengths)])

    class Request:
        def __init__(self, text, factor):
            self.text, self.factor = text, factor

    assert ray.get(dag.execute(Request("a bb ccc", 10))) == [60, 3]
    assert ray.get(dag.execute(Request("graphs are nice", 2))) == [26, 6]

    with InputNode() as x:
        words = load.bind(x)
        both = gather.bind([total.bind(words), longest.bind(words)])
    assert ray.get(both.execute("one three")) == 8 + 5
    ray.shutdown()
    print("dag OK: a diamond with an actor, run twice; nested arguments")
