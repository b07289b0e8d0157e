"""ember.util.metrics (Ray's checks) and the process-local registry that
keeps their values (what an exporter will read), without a cluster."""

import pickle
import threading
import warnings

import pytest

from ember._private import metrics_registry
from ember._private.metrics_registry import HistogramSeries, MetricKind, Registry, ValueSeries
from ember.util.metrics import Counter, Gauge, Histogram


def family(name):
    (found,) = [f for f in metrics_registry.snapshot() if f.name == name]
    return found


# -- the registry -------------------------------------------------------------

def test_counter_and_gauge_series_per_tag_values():
    r = Registry()
    r.declare("hits", MetricKind.COUNTER, "hits seen", ("route",))
    r.declare("temp", MetricKind.GAUGE, "", ())
    r.add("hits", ("/a",), 1.0)
    r.add("hits", ("/b",), 2.0)
    r.add("hits", ("/a",), 0.5)
    r.set("temp", (), 3)
    r.set("temp", (), -1.5)
    hits, temp = r.snapshot()  # sorted by name
    assert (hits.name, hits.kind, hits.description, hits.tag_keys) == ("hits", MetricKind.COUNTER, "hits seen", ("route",))
    assert hits.series == (ValueSeries((("route", "/a"),), 1.5), ValueSeries((("route", "/b"),), 2.0))
    assert temp.series == (ValueSeries((), -1.5),)


def test_histogram_buckets_are_upper_bounds():
    r = Registry()
    r.declare("lat", MetricKind.HISTOGRAM, "", (), (1.0, 5.0))
    for v in (0.5, 1.0, 1.01, 5.0, 7.0, -2.0):
        r.observe("lat", (), v)
    (lat,) = r.snapshot()
    assert lat.boundaries == (1.0, 5.0)
    # <= 1: 0.5, 1.0, -2.0; (1, 5]: 1.01, 5.0; above: 7.0
    assert lat.series == (HistogramSeries((), (3, 2, 1), 6, 0.5 + 1.0 + 1.01 + 5.0 + 7.0 - 2.0),)


def test_a_name_is_one_shape():
    r = Registry()
    r.declare("x", MetricKind.COUNTER, "", ("a",))
    r.declare("x", MetricKind.COUNTER, "another description", ("a",))  # same shape: shared
    with pytest.raises(ValueError, match="'x' is already declared in this process as a counter with tag keys "
                                         "\\('a',\\); it cannot also be a gauge"):
        r.declare("x", MetricKind.GAUGE, "", ("a",))
    with pytest.raises(ValueError, match="cannot also be a counter with tag keys \\('b',\\)"):
        r.declare("x", MetricKind.COUNTER, "", ("b",))
    r.declare("h", MetricKind.HISTOGRAM, "", (), (1.0,))
    with pytest.raises(ValueError, match="boundaries \\[1.0\\]; it cannot also be a histogram with tag keys \\(\\) "
                                         "and boundaries \\[2.0\\]"):
        r.declare("h", MetricKind.HISTOGRAM, "", (), (2.0,))


def test_declared_families_appear_without_values_and_snapshots_do_not_change():
    r = Registry()
    r.declare("c", MetricKind.COUNTER, "", ())
    before = r.snapshot()
    assert before[0].series == ()
    r.add("c", (), 1.0)
    assert before[0].series == () and r.snapshot()[0].series == (ValueSeries((), 1.0),)


def test_concurrent_adds_are_all_counted():
    r = Registry()
    r.declare("c", MetricKind.COUNTER, "", ())

    def add():
        for _ in range(2000):
            r.add("c", (), 1.0)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.snapshot()[0].series[0].value == 8000


# -- the public classes ---------------------------------------------------------

def test_counter_records_into_the_process_registry():
    c = Counter("unit_requests", description="requests", tag_keys=("route", "code"))
    c.set_default_tags({"code": "200"})
    c.inc(tags={"route": "/a"})
    c.inc(2, tags={"route": "/a"})
    c.inc(tags={"route": "/a", "code": "500"})
    f = family("unit_requests")
    assert f.kind is MetricKind.COUNTER and f.description == "requests"
    assert f.series == (ValueSeries((("route", "/a"), ("code", "200")), 3.0),
                        ValueSeries((("route", "/a"), ("code", "500")), 1.0))
    Counter("unit_requests", tag_keys=("route", "code")).inc(tags={"route": "/a", "code": "200"})  # same family
    assert family("unit_requests").series[0].value == 4.0


def test_gauge_and_histogram():
    g = Gauge("unit_queue_depth")
    g.set(5)
    g.set(None)  # (Ray: no-op)
    g.set(-2)
    assert family("unit_queue_depth").series == (ValueSeries((), -2.0),)
    h = Histogram("unit_latency", boundaries=[0.1, 1])
    h.observe(0.05)
    h.observe(3)
    assert family("unit_latency").series == (HistogramSeries((), (1, 0, 1), 2, 3.05),)
    assert h.info == {"name": "unit_latency", "description": "", "tag_keys": (), "default_tags": {},
                      "boundaries": [0.1, 1]}


def test_set_default_tags_returns_the_metric():
    c = Counter("unit_defaults", tag_keys=("a",))
    assert c.set_default_tags({"a": "b"}) is c
    assert c.info["default_tags"] == {"a": "b"}


@pytest.mark.parametrize("make, error, match", [
    (lambda: Counter(""), ValueError, "Empty name is not allowed"),
    (lambda: Counter(5), TypeError, "a metric name must be a string"),
    (lambda: Counter("unit_c", description=5), TypeError, "description must be a string"),
    (lambda: Counter("unit_c", tag_keys=["a"]), TypeError, "tag_keys should be a tuple type"),
    (lambda: Counter("unit_c", tag_keys=(1,)), TypeError, "Tag keys must be str"),
    (lambda: Counter("unit_c", tag_keys=("a",)).set_default_tags({"b": "x"}), ValueError, "Unrecognized tag key b"),
    (lambda: Counter("unit_c", tag_keys=("a",)).set_default_tags({"a": 1}), TypeError, "Tag values must be str"),
    (lambda: Histogram("unit_h"), ValueError, "boundaries argument should be provided"),
    (lambda: Histogram("unit_h", boundaries=[]), ValueError, "boundaries argument should be provided"),
    (lambda: Histogram("unit_h", boundaries=[0, 1]), ValueError, "at index 0.*Use positive values"),
    (lambda: Histogram("unit_h", boundaries=[1, -1]), ValueError, "at index 1.*Use positive values"),
    (lambda: Histogram("unit_h", boundaries=[2, 1]), ValueError, "at index 1.*must be increasing"),
    (lambda: Histogram("unit_h", boundaries=[1, 1]), ValueError, "at index 1.*must be increasing"),
])
def test_declaration_checks(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("record, error, match", [
    (lambda c: c.inc(0, tags={"a": "x"}), ValueError, "value must be >0, got 0"),
    (lambda c: c.inc(-1, tags={"a": "x"}), ValueError, "value must be >0, got -1"),
    (lambda c: c.inc("1", tags={"a": "x"}), TypeError, "value must be int or float"),
    (lambda c: c.inc(), ValueError, "Missing value for tag key\\(s\\): a."),
    (lambda c: c.inc(tags={"a": 1}), TypeError, "Tag values must be str"),
    (lambda c: c.inc(tags={"a": "x", "b": "y"}), ValueError, "Unrecognized tag key b for metric unit_checked"),
])
def test_record_checks(record, error, match):
    c = Counter("unit_checked", tag_keys=("a",))
    with pytest.raises(error, match=match):
        record(c)
    assert family("unit_checked").series == ()  # nothing recorded by a refused call


def test_gauge_and_histogram_value_checks():
    with pytest.raises(TypeError, match="value must be int or float"):
        Gauge("unit_g2").set("3")
    with pytest.raises(TypeError, match="value must be int or float"):
        Histogram("unit_h2", boundaries=[1]).observe(None)


def test_invalid_names_warn_and_are_discarded_as_in_ray():
    with pytest.warns(UserWarning, match="Invalid metric name: unit-dash"):
        c = Counter("unit-dash")
    c.inc()
    assert not [f for f in metrics_registry.snapshot() if f.name == "unit-dash"]
    with pytest.warns(FutureWarning, match="contains a : character"):
        Gauge("unit:colon").set(1)
    assert family("unit:colon").series == (ValueSeries((), 1.0),)


def test_conflicting_declarations_fail():
    Counter("unit_conflict")
    with pytest.raises(ValueError, match="already declared in this process as a counter"):
        Gauge("unit_conflict")


def test_metrics_pickle_with_their_default_tags():
    c = Counter("unit_pickled", "desc", tag_keys=("a",)).set_default_tags({"a": "x"})
    back = pickle.loads(pickle.dumps(c))
    assert back.info == c.info
    back.inc()  # the default tag came along
    assert family("unit_pickled").series == (ValueSeries((("a", "x"),), 1.0),)
    h = pickle.loads(pickle.dumps(Histogram("unit_pickled_h", boundaries=[1, 2])))
    assert h.boundaries == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(Gauge("unit_pickled_g")))
