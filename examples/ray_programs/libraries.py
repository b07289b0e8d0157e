"""The libraries Ray Core users reach for: a queue between producer tasks
and a consumer actor, metrics recorded in both, progress bars from the
tasks drawn by the driver."""

import ember as ray
from ember.experimental.tqdm_ray import tqdm
from ember.util.metrics import Counter, Gauge, Histogram
from ember.util.queue import Empty, Queue


@ray.remote
def produce(q, start, n):
    made = Counter("items_produced", description="items put on the queue", tag_keys=("producer",))
    for i in tqdm(range(start, start + n), desc=f"produce from {start}"):
        q.put(i)  # blocks while the queue is full
        made.inc(tags={"producer": str(start)})
    return n


@ray.remote
class Summer:
    def __init__(self):
        self.total = 0
        self.summed = Gauge("items_summed")
        self.sizes = Histogram("item_size", boundaries=[10, 100, 1000])

    def consume(self, q, n):
        for _ in range(n):
            item = q.get(timeout=60)
            self.total += item
            self.sizes.observe(item)
        self.summed.set(n)
        return self.total


ray.init(num_cpus=2)
q = Queue(maxsize=16)
summer = Summer.remote()
total = summer.consume.remote(q, 400)  # waits on the queue while the producers fill it
assert ray.get([produce.remote(q, 0, 200), produce.remote(q, 200, 200)]) == [200, 200]
assert ray.get(total) == sum(range(400))
try:
    q.get(timeout=0.2)
    raise AssertionError("an empty queue gave an item")
except Empty:
    pass
q.shutdown()
ray.shutdown()
print(f"libraries OK: 400 items through a queue of 16, total {sum(range(400))}")
