"""The public surface, pinned: changing it is a deliberate act."""

import ember
from ember import exceptions

PUBLIC = [
    "DynamicObjectRefGenerator", "ObjectRef", "ObjectRefGenerator", "actor", "available_resources", "cancel", "cloudpickle",
    "cluster_resources", "dag", "exceptions", "get", "get_actor", "get_gpu_ids",
    "get_runtime_context", "init", "is_initialized", "kill", "method", "nodes", "put", "remote", "shutdown", "util",
    "wait", "__version__",
]


def test_top_level_names():
    assert sorted(ember.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(ember, name), name
    public = {n for n in dir(ember) if not n.startswith("_")}
    # Submodules imported by name (ember.v1 stubs, ember.cluster_utils) appear once imported.
    assert public - set(PUBLIC) <= {"v1", "cluster_utils"}, f"unexpected public names: {public - set(PUBLIC)}"


def test_exception_hierarchy():
    for name in ["TaskError", "WorkerCrashedError", "NodeDiedError", "ActorDiedError", "ActorUnavailableError",
                 "ObjectLostError", "OwnerDiedError", "GetTimeoutError", "TaskCancelledError",
                 "ObjectStoreFullError", "OutOfMemoryError", "TaskUnschedulableError"]:
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
