"""The scheduler and runtime environments, without processes: a task of an
environment waits for it to be built, then runs only on a worker started in
it (never on an idle default worker); two such tasks want one build; a failed
build fails the tasks waiting for it; idle workers of an environment retire."""

from ember.v1 import raylet_pb2

from ember import exceptions
from ember._private import serialization
from ember_common import ids
from ember_raylet.client_session import DRIVER, WORKER, ClientSession
from ember_raylet.node_manager import NodeManager
from ember_raylet.worker_pool import WorkerPool
from tests.unit.test_node_manager import FakeProcess, executed, finish, spec

ENV = '{"env_vars":{"A":"1"}}'


class Builder:
    def __init__(self):
        self.ready: set[str] = set()
        self.prepared: list[str] = []

    def is_ready(self, env):
        return env in self.ready

    def prepare(self, env):
        self.prepared.append(env)


def make():
    spawned = []
    pool = WorkerPool(lambda wid: FakeProcess(), max_workers=4,
                      spawn_env=lambda wid, env: spawned.append((wid, env)) or FakeProcess())
    builder = Builder()
    nm = NodeManager(ids.new_unique_id(), {"CPU": 2}, pool, min_workers=2, pipeline_depth=4, runtime_envs=builder)
    nm.ensure_min_workers()
    defaults = []
    for wid in list(pool.starting):
        session = ClientSession(ids.new_unique_id(), WORKER, worker_id=wid)
        nm.connect(session)
        defaults.append(session)
    driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1")
    nm.connect(driver)
    return nm, pool, builder, spawned, defaults, driver


def env_spec():
    s = spec()
    s.runtime_env = ENV
    return s


def test_a_task_of_an_environment_waits_for_it_then_runs_on_its_own_worker():
    nm, pool, builder, spawned, defaults, driver = make()
    a, b = env_spec(), env_spec()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[a, b]))
    assert not any(executed(w) for w in defaults), "a default worker took a task of another environment"
    assert builder.prepared and set(builder.prepared) == {ENV} and not spawned
    builder.ready.add(ENV)
    nm.runtime_env_ready(ENV)
    assert [env for _, env in spawned] == [ENV, ENV]  # a worker per task that fits (2 CPUs)
    assert pool.size == 2 and pool.num_env == 2  # the default pool is not counted down
    session = ClientSession(ids.new_unique_id(), WORKER, worker_id=spawned[0][0])
    nm.connect(session)
    # Each on a worker of its own (a CPU is free for the second: it waits
    # for its worker rather than queue behind the first).
    assert [e.spec.task_id for e in executed(session)] == [a.task_id]
    second = ClientSession(ids.new_unique_id(), WORKER, worker_id=spawned[1][0])
    nm.connect(second)
    assert [e.spec.task_id for e in executed(second)] == [b.task_id]
    finish(nm, session, a.task_id)
    finish(nm, second, b.task_id)
    plain = spec()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[plain]))
    assert not executed(session), "a worker of an environment took a default task"
    assert [e.spec.task_id for w in defaults for e in executed(w)] == [plain.task_id]
    # Idle, it retires whatever the pool's minimum (the default workers stay).
    retired = nm.retire_idle_workers(now=10**9, idle_timeout_s=1)
    assert sorted(w.worker_id for w in retired if w.env) == sorted(worker_id for worker_id, _ in spawned)
    assert pool.size == 2


def test_a_failed_build_fails_the_waiting_tasks_with_a_setup_error():
    nm, pool, builder, spawned, defaults, driver = make()
    a, b = env_spec(), env_spec()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[a, b]))
    nm.runtime_env_failed(ENV, "pip install failed: no such package")
    ready = {v.object_id: v for v in driver.take().ready}
    for s in (a, b):
        value = ready[ids.object_id_for(s.task_id, 1)]
        error, is_error = serialization.deserialize(value.data)
        assert value.is_error and is_error and isinstance(error, exceptions.RuntimeEnvSetupError)
        assert "pip install failed: no such package" in str(error)
    assert not nm.tasks.tasks and not spawned


def test_a_raylet_without_a_builder_fails_such_tasks():
    pool = WorkerPool(lambda wid: FakeProcess(), max_workers=2)
    nm = NodeManager(ids.new_unique_id(), {"CPU": 1}, pool, min_workers=1, pipeline_depth=1)
    driver = ClientSession(ids.new_unique_id(), DRIVER, job_id=b"\0\0\0\1")
    nm.connect(driver)
    s = env_spec()
    nm.handle_batch(driver, raylet_pb2.ClientBatch(submit=[s]))
    (value,) = driver.take().ready
    assert value.is_error and b"builds no runtime environments" in value.data
