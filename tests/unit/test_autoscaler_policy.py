"""The autoscaler's policy and config, without sockets: demand in,
launches and removals out, within every limit."""

from __future__ import annotations

import json

import pytest

from ember_autoscaler import config as cfg
from ember_autoscaler.policy import Gang, NodeView, Shape, Strategy, decide


def make(types: dict, max_workers: int = 10, idle_minutes: float = 1.0, speed: float = 1.0) -> cfg.AutoscalingConfig:
    return cfg.parse({"provider": {"type": "local"}, "max_workers": max_workers,
                      "idle_timeout_minutes": idle_minutes, "upscaling_speed": speed,
                      "available_node_types": types})


HEAD = NodeView("head", None, {"CPU": 2}, {"CPU": 2}, {})
CPU = {"cpu": {"resources": {"CPU": 2}, "max_workers": 5}}
ACCEL = {"accel": {"resources": {"CPU": 1, "accel": 1}, "max_workers": 3}}


def busy_head() -> NodeView:
    return NodeView("head", None, {"CPU": 2}, {"CPU": 0}, {})


def test_queued_work_that_fits_free_room_launches_nothing():
    d = decide(make(CPU), [HEAD], {Shape.of({"CPU": 1}): 2})
    assert d.launches == {} and d.unmet == [] and d.remove == []


def test_a_burst_launches_just_enough_nodes_of_the_type_that_fits():
    d = decide(make({**CPU, **ACCEL}), [busy_head()], {Shape.of({"CPU": 1, "accel": 1}): 2, Shape.of({"CPU": 1}): 3})
    assert d.launches == {"accel": 2, "cpu": 2}  # 3 x CPU:1 need two 2-CPU nodes
    assert d.unmet == []


def test_launching_nodes_count_as_room_so_nothing_is_launched_twice():
    launching = NodeView("i1", "accel", {"CPU": 1, "accel": 1}, {}, {}, launching=True)
    d = decide(make(ACCEL), [busy_head(), launching], {Shape.of({"accel": 1}): 1})
    assert d.launches == {}


def test_demand_far_above_the_limits_never_exceeds_them():
    config = make(CPU, max_workers=3)
    nodes = [busy_head()]
    d = decide(config, nodes, {Shape.of({"CPU": 2}): 1000})
    assert d.launches == {"cpu": 3}
    assert d.unmet and not d.unmet[0].infeasible and "max_workers" in d.unmet[0].reason
    # Next round, with those 3 launching: nothing more.
    nodes += [NodeView(f"i{i}", "cpu", {"CPU": 2}, {}, {}, launching=True) for i in range(3)]
    assert decide(config, nodes, {Shape.of({"CPU": 2}): 1000}).launches == {}


def test_a_type_s_own_max_workers_holds_too():
    d = decide(make(ACCEL, max_workers=10), [busy_head()], {Shape.of({"accel": 1}): 50})
    assert d.launches == {"accel": 3}


def test_upscaling_speed_caps_launches_per_round():
    d = decide(make({"cpu": {"resources": {"CPU": 1}, "max_workers": 100}}, max_workers=100, speed=1.0),
               [busy_head()], {Shape.of({"CPU": 1}): 50})
    assert d.launches == {"cpu": 5}  # at least 5 at once; more once nodes run


def test_infeasible_demand_is_reported_and_never_launched_for():
    d = decide(make(CPU), [busy_head()], {Shape.of({"GPU": 1}): 4, Shape.of({"CPU": 8}): 1})
    assert d.launches == {}
    assert sorted((u.shape.describe(), u.count, u.infeasible) for u in d.unmet) == [
        ("{CPU: 8}", 1, True), ("{GPU: 1}", 4, True)]


def test_label_selectors_pick_the_type_with_those_labels():
    types = {"a": {"resources": {"CPU": 1}, "labels": {"zone": "a"}},
             "b": {"resources": {"CPU": 1}, "labels": {"zone": "b"}}}
    d = decide(make(types), [busy_head()], {Shape.of({"CPU": 1}, {"zone": "b"}): 1})
    assert d.launches == {"b": 1}
    d = decide(make(types), [busy_head()], {Shape.of({"CPU": 1}, {"zone": "c"}): 1})
    assert d.launches == {} and d.unmet[0].infeasible


def test_min_workers_are_launched_and_never_removed():
    types = {"cpu": {"resources": {"CPU": 2}, "min_workers": 2, "max_workers": 4}}
    assert decide(make(types), [HEAD], {}).launches == {"cpu": 2}
    idle = [NodeView(f"n{i}", "cpu", {"CPU": 2}, {"CPU": 2}, {}, idle_s=600) for i in range(3)]
    d = decide(make(types), [HEAD, *idle], {})
    assert d.launches == {} and len(d.remove) == 1


def test_idle_nodes_go_after_the_timeout_and_not_before():
    config = make(CPU, idle_minutes=0.5)
    young = NodeView("young", "cpu", {"CPU": 2}, {"CPU": 2}, {}, idle_s=29)
    old = NodeView("old", "cpu", {"CPU": 2}, {"CPU": 2}, {}, idle_s=31)
    assert decide(config, [HEAD, young, old], {}).remove == ["old"]


def test_an_idle_node_that_waiting_work_would_use_stays():
    config = make(CPU, idle_minutes=0.5)
    idle = NodeView("n", "cpu", {"CPU": 2}, {"CPU": 2}, {}, idle_s=100)
    d = decide(config, [busy_head(), idle], {Shape.of({"CPU": 1}): 1})
    assert d.remove == [] and d.launches == {}


def test_nodes_not_the_autoscaler_s_are_never_removed():
    config = make(CPU, idle_minutes=0.0)
    manual = NodeView("manual", None, {"CPU": 2}, {"CPU": 2}, {}, idle_s=1e6)
    assert decide(config, [HEAD, manual], {}).remove == []


def test_strict_spread_group_of_four_needs_four_nodes():
    config = make({"w": {"resources": {"CPU": 1}, "max_workers": 10}})
    gang = Gang("pg", tuple(Shape.of({"CPU": 1}) for _ in range(4)), Strategy.STRICT_SPREAD)
    d = decide(config, [NodeView("head", None, {"CPU": 4}, {"CPU": 4}, {})], {}, [gang])
    assert d.launches == {"w": 3}  # the head holds one bundle; one node per other bundle


def test_strict_pack_group_needs_one_node_holding_it_all():
    config = make({"small": {"resources": {"CPU": 1}}, "big": {"resources": {"CPU": 4}}})
    gang = Gang("pg", (Shape.of({"CPU": 2}), Shape.of({"CPU": 2})), Strategy.STRICT_PACK)
    assert decide(config, [busy_head()], {}, [gang]).launches == {"big": 1}


def test_a_group_the_limits_cannot_hold_launches_nothing():
    config = make({"w": {"resources": {"CPU": 1}}}, max_workers=2)
    gang = Gang("pg", tuple(Shape.of({"CPU": 1}) for _ in range(4)), Strategy.STRICT_SPREAD)
    d = decide(config, [busy_head()], {}, [gang])
    assert d.launches == {} and d.unmet[0].infeasible and "needs 4 nodes" in d.unmet[0].reason


def test_requests_are_a_floor_on_total_resources_and_keep_nodes():
    config = make(CPU, idle_minutes=0.0)
    d = decide(config, [busy_head()], {}, requests=[Shape.of({"CPU": 1})] * 6)
    assert d.launches == {"cpu": 2}  # the head's 2 CPUs count (total, not free): 4 more CPUs
    idle = NodeView("n", "cpu", {"CPU": 2}, {"CPU": 2}, {}, idle_s=100)
    assert decide(config, [HEAD, idle], {}, requests=[Shape.of({"CPU": 1})] * 4).remove == []


def test_types_backing_off_are_not_launched():
    d = decide(make(ACCEL), [busy_head()], {Shape.of({"accel": 1}): 1}, launchable=set())
    assert d.launches == {} and "backing off" in d.unmet[0].reason and not d.unmet[0].infeasible


def test_config_reads_yaml_and_json_with_ray_keys(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("cluster_name: x\nprovider: {type: local}\nmax_workers: 4\nidle_timeout_minutes: 0.05\n"
                         "available_node_types:\n  head: {resources: {CPU: 1}}\n"
                         "  w: {resources: {CPU: 2, accel: 1}, labels: {zone: a}, min_workers: 1, max_workers: 2}\n"
                         "head_node_type: head\n")
    c = cfg.load(yaml_file)
    assert c.max_workers == 4 and c.idle_timeout_s == pytest.approx(3.0) and list(c.node_types) == ["w"]
    assert c.node_types["w"].labels == {"zone": "a"} and c.node_types["w"].min_workers == 1
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"provider": {"type": "command", "start_command": "s", "stop_command": "t"},
                                     "available_node_types": {"w": {"resources": {"CPU": 1}}}}))
    assert cfg.load(json_file).provider.start_command == "s"


@pytest.mark.parametrize("raw, words", [
    ({}, "needs a provider"),
    ({"provider": {"type": "aws"}, "available_node_types": {"w": {"resources": {"CPU": 1}}}}, "provider.type"),
    ({"provider": {"type": "command", "start_command": "x"}, "available_node_types": {"w": {"resources": {"CPU": 1}}}},
     "stop_command"),
    ({"provider": {"type": "local"}}, "at least one worker node type"),
    ({"provider": {"type": "local"}, "available_node_types": {"w": {"resources": {}}}}, "must offer some resource"),
    ({"provider": {"type": "local"}, "available_node_types": {"w": {"resources": {"CPU": -1}}}}, "at least 0"),
    ({"provider": {"type": "local"}, "available_node_types": {"w": {"resources": {"CPU": 1}, "min_workers": 3,
                                                                   "max_workers": 2}}}, "above max_workers"),
    ({"provider": {"type": "local"}, "max_workers": 1,
      "available_node_types": {"w": {"resources": {"CPU": 1}, "min_workers": 2}}}, "add up to 2"),
    ({"provider": {"type": "local"}, "idle_timeout_minutes": "soon",
      "available_node_types": {"w": {"resources": {"CPU": 1}}}}, "must be a number"),
    ({"provider": {"type": "local"}, "max_wrokers": 1, "available_node_types": {"w": {"resources": {"CPU": 1}}}},
     "unknown key"),
    ({"provider": {"type": "local"}, "available_node_types": {"w": {"resources": {"CPU": 1},
                                                                   "labels": {"ember.io/node-type": "x"}}}}, "labels"),
])
def test_bad_configs_are_refused_with_what_is_wrong(raw, words):
    with pytest.raises(cfg.ConfigError, match=words):
        cfg.parse(raw)


def test_unreadable_config_files_say_so(tmp_path):
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("provider: [unclosed\n")
    with pytest.raises(cfg.ConfigError, match="neither JSON nor valid YAML"):
        cfg.load(bad)
