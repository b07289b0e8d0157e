"""Metrics recorded in tasks and actors land in the registry of the worker
that recorded them (the values an exporter on that node will read)."""

import ember
from ember._private import metrics_registry
from ember._private.metrics_registry import HistogramSeries, MetricKind, ValueSeries
from ember.util.metrics import Counter, Gauge, Histogram


@ember.remote
def handle_requests(n, counter):
    latency = Histogram("it_task_latency_s", boundaries=[0.1, 1.0], tag_keys=("route",))
    for i in range(n):
        counter.inc(tags={"route": "/a"})
        latency.observe(0.5 * i, tags={"route": "/a"})
    return [f for f in metrics_registry.snapshot() if f.name.startswith("it_task_")]


@ember.remote
class Server:
    def __init__(self):
        self.depth = Gauge("it_actor_depth", description="queue depth", tag_keys=("actor",))
        self.depth.set_default_tags({"actor": "server"})
        self.served = Counter("it_actor_served")

    def serve(self, depth):
        self.depth.set(depth)
        self.served.inc(2)

    def metrics(self):
        return {f.name: f for f in metrics_registry.snapshot() if f.name.startswith("it_actor_")}


def test_a_task_records_into_its_workers_registry(cluster):
    counter = Counter("it_task_requests", tag_keys=("route",))  # made here, pickled into the task
    families = {f.name: f for f in ember.get(handle_requests.remote(4, counter), timeout=60)}
    requests, latency = families["it_task_requests"], families["it_task_latency_s"]
    assert requests.kind is MetricKind.COUNTER
    assert requests.series == (ValueSeries((("route", "/a"),), 4.0),)  # (only this task records it)
    assert latency.series == (HistogramSeries((("route", "/a"),), (1, 2, 1), 4, 3.0),)
    # The driver's registry has the family it declared, not the worker's values.
    (here,) = [f for f in metrics_registry.snapshot() if f.name == "it_task_requests"]
    assert here.series == ()


def test_an_actor_records_into_its_workers_registry(cluster):
    server = Server.remote()
    ember.get([server.serve.remote(3), server.serve.remote(7)], timeout=60)
    families = ember.get(server.metrics.remote(), timeout=60)
    assert families["it_actor_depth"].description == "queue depth"
    assert families["it_actor_depth"].series == (ValueSeries((("actor", "server"),), 7.0),)
    assert families["it_actor_served"].series == (ValueSeries((), 4.0),)
