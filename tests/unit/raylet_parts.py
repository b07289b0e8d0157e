"""What the tests of the node manager's parts share: the real state they
work on (tasks, objects, the cluster view) and recorders standing in for
the callbacks a part is given, so each part is tested on its own."""

from ember.v1 import common_pb2, gcs_pb2, raylet_pb2

from ember_common import ids
from ember_common.object_layout import Failure
from ember_raylet.client_session import DRIVER, ClientSession
from ember_raylet.cluster_view import ClusterView
from ember_raylet.object_directory import ObjectDirectory
from ember_raylet.task_manager import TaskEntry, TaskManager

FN = b"f" * 32
LOCAL = b"L" * 16


class Finished:
    """A FinishTask that ends the task as the node manager would (it leaves
    the task table) and records how: task id -> Failure, or the returns."""

    def __init__(self, tasks: TaskManager):
        self.tasks = tasks
        self.ended: dict[bytes, object] = {}

    def __call__(self, task, returns=None, error=None, failed_dep=None):
        self.tasks.tasks.pop(task.spec.task_id, None)
        self.ended[task.spec.task_id] = error or failed_dep or returns

    def failure(self, task_id: bytes) -> Failure:
        error = self.ended[task_id]
        assert isinstance(error, Failure), error
        return error


class Calls(list):
    """A callback that records its arguments (one tuple per call)."""

    def __call__(self, *args):
        self.append(args if len(args) != 1 else args[0])


class State:
    """A node's shared state: tasks, objects, the cluster view, a driver."""

    def __init__(self, *peers: gcs_pb2.NodeInfo):
        self.tasks = TaskManager()
        self.objects = ObjectDirectory(LOCAL)
        self.view = ClusterView(LOCAL)
        self.view.update(list(peers))
        self.finished = Finished(self.tasks)
        self.driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1")

    def task(self, deps=(), cpus=1.0, retries=0, name="f", actor_id=b"", submitter=None) -> TaskEntry:
        """A submitted task (in the table, its returns pending), not yet placed."""
        spec = raylet_pb2.TaskSpec(task_id=ids.new_unique_id(), function_id=FN, function_name=name, num_returns=1,
                                   dependencies=list(deps), max_retries=retries, actor_id=actor_id,
                                   method_name=name if actor_id else "")
        if cpus:
            spec.resources.amounts["CPU"] = cpus
        task = TaskEntry(spec, submitter or self.driver)
        self.tasks.tasks[spec.task_id] = task
        self.objects.create_pending(ids.object_id_for(spec.task_id, 1), task.submitter)
        return task

    def put(self, data=b"x", stored_on=None) -> common_pb2.ObjectValue:
        value = (common_pb2.ObjectValue(object_id=ids.new_put_id(), stored_size=1 << 20, node_id=stored_on)
                 if stored_on else common_pb2.ObjectValue(object_id=ids.new_put_id(), data=data))
        self.objects.put(value, self.driver)
        return value


def node(cpus=2.0, available=None, **custom) -> gcs_pb2.NodeInfo:
    """A node the GCS lists as alive (resources free unless `available` says otherwise)."""
    info = gcs_pb2.NodeInfo(node_id=ids.new_unique_id(), node_address="127.0.0.1", raylet_port=1,
                            object_store_port=2, alive=True)
    info.total.amounts.update({"CPU": cpus, **custom})
    info.available.amounts.update(available if available is not None else {"CPU": cpus, **custom})
    return info
