"""Errors people read: remote tracebacks that show the user's code, values
that cannot be pickled named with where they were going, wrong argument
counts and bad timeouts refused at the call."""

from __future__ import annotations

import textwrap
import threading

import pytest

import ember

pytestmark = pytest.mark.usefixtures("cluster")

def _user_module(tmp_path, source: str) -> dict:
    """Run `source` as the code of a user's script at tmp_path/prog.py (a
    module workers cannot import, so its functions travel by value, as a
    driver script's do)."""
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(source))
    namespace = {"__name__": "prog_not_importable", "ember": ember}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def test_a_remote_traceback_names_the_users_file_and_line_and_hides_embers_frames(tmp_path):
    prog = _user_module(tmp_path, """
        def helper(x):
            return 1 / x

        @ember.remote
        def process(x):
            return helper(x)

        @ember.remote
        class Worker:
            def run(self):
                raise ValueError("bad input")
    """)
    with pytest.raises(ZeroDivisionError) as info:
        ember.get(prog["process"].remote(0))
    tb = info.value.traceback_str
    path = str(tmp_path / "prog.py")
    assert f'File "{path}", line 7, in process' in tb and "return helper(x)" in tb
    assert f'File "{path}", line 3, in helper' in tb and "return 1 / x" in tb
    assert tb.startswith("Traceback") and tb.count("File ") == 2, tb  # no worker.py frames
    assert "<dynamic-code>" not in tb and "_execute" not in tb

    with pytest.raises(ValueError) as info:
        ember.get(prog["Worker"].remote().run.remote())
    tb = info.value.traceback_str
    assert f'File "{path}", line 12, in run' in tb and tb.count("File ") == 1, tb


@ember.remote
def process(data, lock=None):
    return data


@ember.remote
def returns_a_lock():
    return threading.Lock()


@ember.remote
class Keeper:
    def __init__(self, value=None):
        self.value = value

    def keep(self, value):
        self.value = value


def test_an_unpicklable_argument_is_named_with_its_function():
    with pytest.raises(TypeError, match=r"cannot send argument 2 of process\(\): a _thread.lock cannot be pickled"):
        process.remote(1, threading.Lock())
    with pytest.raises(TypeError, match=r"cannot send argument 'lock' of process\(\): a _thread.lock"):
        process.remote(1, lock=threading.Lock())
    with pytest.raises(TypeError, match=r"cannot send argument 1 of process\(\): a dict cannot be pickled "
                                        r"\(\['x'\]\[0\] is a _thread.lock\)"):
        process.remote({"x": [threading.Lock()]})
    with pytest.raises(TypeError, match=r"cannot send argument 1 of Keeper\(\): a _thread.lock"):
        Keeper.remote(threading.Lock())
    keeper = Keeper.remote()
    with pytest.raises(TypeError, match=r"cannot send argument 1 of Keeper.keep\(\): a _thread.lock"):
        keeper.keep.remote(threading.Lock())
    assert ember.get(process.remote(2)) == 2  # nothing was left half sent


def test_an_unpicklable_function_names_what_it_captured():
    lock = threading.Lock()

    @ember.remote
    def uses_lock():
        with lock:
            return 1

    with pytest.raises(TypeError, match=r"cannot send '.*uses_lock' to workers: function .*uses_lock cannot be "
                                        r"pickled \(it captures 'lock', a _thread.lock\)"):
        uses_lock.remote()


def test_an_unpicklable_return_value_names_the_task():
    with pytest.raises(TypeError, match=r"cannot send the return value of returns_a_lock\(\): "
                                        r"a _thread.lock cannot be pickled"):
        ember.get(returns_a_lock.remote())


def test_wrong_argument_counts_fail_at_remote():
    with pytest.raises(TypeError, match=r"process\(\) cannot take these arguments: missing a required argument: 'data'"):
        process.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        process.remote(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        process.options(num_cpus=0).remote(1, colour="red")
    with pytest.raises(TypeError, match=r"Keeper\(\) cannot take these arguments: too many"):
        Keeper.remote(1, 2)
    keeper = Keeper.remote(value=1)
    with pytest.raises(TypeError, match=r"Keeper.keep\(\) cannot take these arguments: missing"):
        keeper.keep.remote()
    assert ember.get([process.remote(1), process.remote(data=2, lock=None), keeper.keep.remote(3)]) == [1, 2, None]


def test_a_negative_timeout_is_refused():
    ref = process.remote(1)
    with pytest.raises(ValueError, match="timeout"):
        ember.get(ref, timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        ember.wait([ref], timeout=-0.5)
    assert ember.get(ref, timeout=30) == 1
