"""Module-level task bodies and classes used by the tests (importable by
workers by reference, as a user's own modules are), `wait_until`, the tests'
one way to wait for something to happen, `driver_output`, what the driver
prints, `wait_nodes`, for a cluster whose nodes all know each other, and
`build_wheel`, a tiny wheel for runtime_env pip tests."""

import base64
import contextlib
import hashlib
import io
import os
import pathlib
import time
import zipfile
from typing import Callable, Iterator, TypeVar

import ember
from ember.exceptions import TaskUnschedulableError
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from ember_common import rpc
from ember.v1 import raylet_pb2_grpc

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str = "the condition",
               interval: float = 0.05) -> T:
    """Poll `condition` until it returns something true, and return that;
    AssertionError naming `what` (and the last value seen) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def build_wheel(folder: pathlib.Path, name: str, value: str) -> str:
    """A tiny pure-Python wheel `name` whose module holds VALUE = value (the
    tests reach no package index: pip installs it with --no-index)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-1.0-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n"),
    }
    record = []
    for file, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{file},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as z:
        for file, text in files.items():
            z.writestr(file, text)
        z.writestr(f"{name}-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return str(path)


class DriverOutput:
    """What the driver printed (task output, raylet lines, warnings), kept whole."""

    def __init__(self) -> None:
        self._out, self._err = io.StringIO(), io.StringIO()

    @property
    def out(self) -> str:
        return self._out.getvalue()

    @property
    def err(self) -> str:
        return self._err.getvalue()

    def wait_for(self, condition: Callable[[str, str], bool], what: str, timeout: float = 30) -> tuple[str, str]:
        """Wait until `condition(out, err)` holds; return (out, err)."""
        try:
            wait_until(lambda: condition(self.out, self.err), timeout=timeout, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; stdout {self.out[-1000:]!r}, stderr {self.err[-1000:]!r}") from None
        return self.out, self.err


@contextlib.contextmanager
def driver_output() -> Iterator[DriverOutput]:
    """Record what the driver prints meanwhile. Not capfd: polling it races
    the client's reader thread (a line written between a snapshot's read and
    its truncation is lost). Enter it in the test's body: pytest sets
    sys.stdout again after the fixtures ran."""
    output = DriverOutput()
    with contextlib.redirect_stdout(output._out), contextlib.redirect_stderr(output._err):
        yield output


def raylet_call(token: str, node_id: str, method: str, request):
    """One RPC to the raylet of node `node_id` (hex), e.g. GetNodeStats."""
    info = next(n for n in ember.nodes() if n["NodeID"] == node_id)
    channel = rpc.channel(f"{info['NodeManagerAddress']}:{info['NodeManagerPort']}", token)
    try:
        return getattr(raylet_pb2_grpc.RayletStub(channel), method)(request, timeout=5)
    finally:
        channel.close()


@contextlib.contextmanager
def store_stub(token: str, node) -> Iterator:
    """A node's object store (ObjectStore stub), for as long as the `with` lasts."""
    from ember.v1 import objectstore_pb2_grpc

    short = node.node_id.hex()[:8]
    channel = rpc.channel(f"unix:{node.session_dir / f'store-{short}.sock'}", token)
    try:
        yield objectstore_pb2_grpc.ObjectStoreStub(channel)
    finally:
        channel.close()


def stored_objects(token: str, node) -> list[str]:
    """The objects (hex ids) in a node's store, in memory or spilled."""
    from ember.v1 import objectstore_pb2

    with store_stub(token, node) as store:
        return [i.hex() for i in store.List(objectstore_pb2.ListRequest(), timeout=10).object_ids]


def wait_nodes(n: int, timeout: float = 10) -> None:
    """Until `n` nodes are alive and every raylet knows every other node:
    a raylet learns of the others only from the GCS's answer to its next
    resource report, and until then cannot place work on a new node."""
    def alive() -> list[str] | None:
        ids = [x["NodeID"] for x in ember.nodes() if x["Alive"]]
        return ids if len(ids) == n else None

    node_ids = wait_until(alive, timeout, f"{n} alive nodes")
    wait_until(lambda: _every_node_knows(node_ids), timeout, "every raylet to know every other node", interval=0.1)


def _pinned(node_id: str):
    return NodeAffinitySchedulingStrategy(node_id)


@ember.remote(num_cpus=0)
def _node_of_this_task() -> str:
    return ember.get_runtime_context().get_node_id()


@ember.remote(num_cpus=0)
def _unknown_to_this_node(peers: list[str]) -> list[str]:
    """Of `peers`, those this node's raylet does not know: a task pinned
    (hard affinity) to a node it does not know fails at once."""
    refs = [(p, _node_of_this_task.options(scheduling_strategy=_pinned(p)).remote()) for p in peers]
    unknown = []
    for peer, ref in refs:
        try:
            ember.get(ref, timeout=30)
        except TaskUnschedulableError:
            unknown.append(peer)
    return unknown


def _every_node_knows(node_ids: list[str]) -> bool:
    """Whether each node's raylet (the driver's too) knows every other node;
    asks one node at a time, so each runs one probe task at a time."""
    for node_id in node_ids:
        others = [x for x in node_ids if x != node_id]
        try:
            if ember.get(_unknown_to_this_node.options(scheduling_strategy=_pinned(node_id)).remote(others),
                         timeout=30):
                return False
        except TaskUnschedulableError:  # the driver's raylet does not know that node yet
            return False
    return True


class MyError(Exception):
    pass


def raise_my_error(msg):
    raise MyError(msg)


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def touch_then_sleep(path, seconds, value):
    """sleep_then, having created `path` first: the test knows it started."""
    open(path, "w").close()
    time.sleep(seconds)
    return value


def crash_process():
    os._exit(13)


def _decode_slowly(path: str, seconds: float) -> float:
    open(path, "w").close()
    time.sleep(seconds)
    return seconds


class SlowToDecode:
    """An argument whose decoding in the worker (before the task's code
    runs) creates `path` and then takes `seconds`; it decodes to `seconds`."""

    def __init__(self, path: str, seconds: float) -> None:
        self.path, self.seconds = path, seconds

    def __reduce__(self) -> tuple:
        return (_decode_slowly, (self.path, self.seconds))
