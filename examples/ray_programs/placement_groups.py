"""A placement group reserving a gang of CPUs; a trainer task placed in it
starts its workers, which stay in the group (captured child tasks)."""

import ember as ray
from ember.util import get_current_placement_group, placement_group, remove_placement_group
from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@ray.remote(num_cpus=1)
def shard(i):
    pg = get_current_placement_group()
    return i * i, pg.id.hex() if pg is not None else None


@ray.remote(num_cpus=1)
def trainer(shards):
    return ray.get([shard.remote(i) for i in range(shards)])


@ray.remote(num_cpus=1)
class ParameterServer:
    def __init__(self):
        self.weights = 0

    def apply(self, gradient):
        self.weights += gradient
        return self.weights


if __name__ == "__main__":
    ray.init(num_cpus=4)
    pg = placement_group([{"CPU": 1}] * 3, strategy="PACK")
    ray.get(pg.ready(), timeout=30)
    in_group = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
    results = ray.get(trainer.options(scheduling_strategy=in_group).remote(4))
    assert [value for value, _ in results] == [0, 1, 4, 9]
    assert {group for _, group in results} == {pg.id.hex()}  # every shard ran in the group

    server = ParameterServer.options(
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=2)).remote()
    assert ray.get([server.apply.remote(g) for g in (1, 2, 3)]) == [1, 3, 6]
    outside = ray.get(shard.remote(5))
    assert outside == (25, None)
    ray.kill(server)
    remove_placement_group(pg)
    ray.shutdown()
    print("placement groups OK: 4 captured shards in the group, an actor in bundle 2")
