"""The public surface, pinned: changing it is a deliberate act."""

import ember
from ember import exceptions

PUBLIC = [
    "DynamicObjectRefGenerator", "ObjectRef", "ObjectRefGenerator", "actor", "available_resources", "cancel", "cloudpickle",
    "cluster_resources", "dag", "exceptions", "experimental", "get", "get_actor", "get_gpu_ids",
    "get_runtime_context", "init", "is_initialized", "job_config", "kill", "method", "nodes", "put", "remote", "runtime_env",
    "shutdown", "timeline", "util", "wait", "__version__",
]


def test_top_level_names():
    assert sorted(ember.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(ember, name), name
    public = {n for n in dir(ember) if not n.startswith("_")}
    # Submodules imported by name (ember.v1 stubs, ember.cluster_utils, ember.job_submission, ember.autoscaler)
    # appear once imported.
    assert public - set(PUBLIC) <= {"v1", "cluster_utils", "job_submission", "autoscaler"}, \
        f"unexpected public names: {public - set(PUBLIC)}"


def test_exception_hierarchy():
    for name in ["TaskError", "WorkerCrashedError", "NodeDiedError", "ActorDiedError", "ActorUnavailableError",
                 "ObjectLostError", "OwnerDiedError", "GetTimeoutError", "TaskCancelledError",
                 "ObjectStoreFullError", "OutOfMemoryError", "TaskUnschedulableError", "RuntimeEnvSetupError"]:
        assert issubclass(getattr(exceptions, name), exceptions.EmberError), name
    assert issubclass(exceptions.GetTimeoutError, TimeoutError)
    assert exceptions.RayTaskError is exceptions.TaskError  # Ray's spellings


def test_cluster_utils_surface():
    from ember.cluster_utils import Cluster

    assert {"add_node", "remove_node", "connect", "shutdown", "address", "list_all_nodes"} <= set(dir(Cluster))


def test_dag_surface():
    import ember.dag

    assert sorted(ember.dag.__all__) == ["ClassMethodNode", "ClassNode", "DAGInputData", "DAGNode", "FunctionNode",
                                         "InputAttributeNode", "InputNode", "MultiOutputNode"]
    for name in ember.dag.__all__:
        assert hasattr(ember.dag, name), name


def test_library_surfaces():
    import queue

    from ember.experimental import tqdm_ray
    from ember.util import metrics
    from ember.util import queue as ember_queue

    assert ember_queue.__all__ == ["Empty", "Full", "Queue"]
    assert issubclass(ember_queue.Empty, queue.Empty) and issubclass(ember_queue.Full, queue.Full)
    assert {"put", "get", "put_nowait", "get_nowait", "put_nowait_batch", "get_nowait_batch", "put_async",
            "get_async", "qsize", "size", "empty", "full", "shutdown", "__len__"} <= set(dir(ember_queue.Queue))
    assert metrics.__all__ == ["Counter", "Gauge", "Histogram"]
    assert {"inc", "set_default_tags", "info"} <= set(dir(metrics.Counter))
    assert "set" in dir(metrics.Gauge) and "observe" in dir(metrics.Histogram)
    assert tqdm_ray.__all__ == ["safe_print", "tqdm"]
    assert {"update", "set_description", "close", "refresh", "n", "total"} <= set(dir(tqdm_ray.tqdm))
    assert ember.runtime_env.__all__ == ["RuntimeEnv", "RuntimeEnvConfig"]
    assert issubclass(ember.runtime_env.RuntimeEnv, dict) and issubclass(ember.runtime_env.RuntimeEnvConfig, dict)
    assert ember.job_config.__all__ == ["JobConfig"]
    assert {"set_metadata", "set_ray_namespace", "set_runtime_env", "set_default_actor_lifetime",
            "from_json"} <= set(dir(ember.job_config.JobConfig))


def test_autoscaler_sdk_surface():
    import inspect

    from ember.autoscaler import sdk

    assert list(inspect.signature(sdk.request_resources).parameters) == ["num_cpus", "bundles"]  # Ray's
