"""runtime_env on tasks and actors: an empty one runs as if none was given; a
non-empty one is refused where it is given, never silently ignored."""

import pytest

import ember
from ember.runtime_env import RuntimeEnv


@ember.remote
def double(x):
    return 2 * x


@ember.remote
class Box:
    def get(self):
        return "box"


@pytest.mark.parametrize("empty", [None, {}, RuntimeEnv()])
def test_an_empty_runtime_env_runs(cluster, empty):
    assert ember.get(double.options(runtime_env=empty).remote(4), timeout=60) == 8
    box = Box.options(runtime_env=empty).remote()
    assert ember.get(box.get.remote(), timeout=60) == "box"
    decorated = ember.remote(runtime_env=empty)(lambda: "ok")
    assert ember.get(decorated.remote(), timeout=60) == "ok"


def test_a_non_empty_runtime_env_is_refused_at_once():
    message = "runtime environments are not supported yet: the runtime_env given to {} sets env_vars"
    with pytest.raises(NotImplementedError, match=message.format("a remote function")):
        double.options(runtime_env={"env_vars": {"A": "1"}})
    with pytest.raises(NotImplementedError, match=message.format("an actor")):
        Box.options(runtime_env=RuntimeEnv(env_vars={"A": "1"}))
    with pytest.raises(NotImplementedError, match="sets pip"):
        ember.remote(runtime_env={"pip": ["requests"]})(lambda: 1)
    with pytest.raises(ValueError, match="unknown runtime_env key 'pips'"):
        double.options(runtime_env={"pips": ["requests"]})
