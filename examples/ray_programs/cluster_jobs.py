"""A two-node test cluster made in-process (Ray's cluster_utils), joined by
its address with a job configuration: the job's code comes from a code
search path its driver never imports, and its tasks register and find
actors in the job's namespace."""

import pathlib
import sys
import tempfile

import ember as ray
from ember.cluster_utils import Cluster
from ember.job_config import JobConfig


@ray.remote
class Registry:
    def __init__(self):
        self.entries = {}

    def add(self, key, value):
        self.entries[key] = value
        return len(self.entries)


@ray.remote
def score(word):
    import scoring_rules  # found through the job's code search path

    registry = ray.get_actor("registry")  # the job's namespace, inside a task too
    value = scoring_rules.score(word)
    ray.get(registry.add.remote(word, value))
    return value, ray.get_runtime_context().namespace


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as code_dir:
        (pathlib.Path(code_dir) / "scoring_rules.py").write_text(
            "def score(word):\n    return sum(ord(c) - 96 for c in word.lower())\n")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        cluster.add_node(num_cpus=2)
        ray.init(address=cluster.address, namespace="scoring",
                 job_config=JobConfig(code_search_path=[code_dir], metadata={"example": "cluster_jobs"}))
        assert len(ray.nodes()) == 2
        registry = Registry.options(name="registry").remote()
        words = ["ray", "ember", "actor", "task"]
        results = ray.get([score.options(scheduling_strategy="SPREAD").remote(w) for w in words])
        assert [value for value, _ in results] == [44, 43, 57, 51], results
        assert {namespace for _, namespace in results} == {"scoring"}
        assert "scoring_rules" not in sys.modules  # only the workers imported it
        assert ray.get(registry.add.remote("total", sum(v for v, _ in results))) == 5
        ray.shutdown()
        cluster.shutdown()
    print("cluster jobs OK: 2 nodes, code from the search path, names in the job's namespace")
