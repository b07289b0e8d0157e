"""RuntimeEnv / RuntimeEnvConfig: Ray's keys and checks, and the refusal of
a non-empty runtime_env until runtime environments exist."""

import json

import pytest

from ember._private.runtime_env_support import validate
from ember.runtime_env import RuntimeEnv, RuntimeEnvConfig


def test_is_a_dict_of_the_given_keys():
    env = RuntimeEnv(working_dir="/src", env_vars={"A": "1"}, pip=["requests==2.0"], excludes=["*.log"])
    assert isinstance(env, dict)
    assert env == {"working_dir": "/src", "env_vars": {"A": "1"}, "pip": ["requests==2.0"], "excludes": ["*.log"]}
    assert RuntimeEnv(**env) == env  # a plain dict of the same keys builds the same env
    assert env.working_dir() == "/src" and env.env_vars() == {"A": "1"} and env.has_pip() and not env.has_conda()
    assert RuntimeEnv().py_modules() == [] and not RuntimeEnv().has_working_dir()


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="unknown runtime_env key 'pip_packages'.*known: .*working_dir"):
        RuntimeEnv(pip_packages=["x"])
    env = RuntimeEnv()
    with pytest.raises(ValueError, match="unknown runtime_env key 'workdir'"):
        env["workdir"] = "/src"
    with pytest.raises(ValueError, match="unknown runtime_env key"):
        env.update({"bogus": 1})


@pytest.mark.parametrize("env_vars, match", [
    ({"A": 1}, "'A': 1 is str: int"),
    ({1: "a"}, "1: 'a' is int: str"),
    (["A=1"], "must be a dict of str to str, got list"),
])
def test_env_vars_must_map_str_to_str(env_vars, match):
    with pytest.raises(TypeError, match=match):
        RuntimeEnv(env_vars=env_vars)


@pytest.mark.parametrize("kwargs", [{"working_dir": 3}, {"py_modules": "mod"}, {"excludes": "*.log"},
                                    {"pip": 3}, {"conda": ["x"]}, {"container": "img"}, {"image_uri": 5},
                                    {"worker_process_setup_hook": 5}, {"config": 10}])
def test_values_of_the_wrong_type_are_refused(kwargs):
    with pytest.raises(TypeError, match="runtime_env"):
        RuntimeEnv(**kwargs)


def test_empty_values_mean_nothing():
    assert RuntimeEnv(env_vars={}, excludes=[]) == {}
    assert RuntimeEnv(working_dir=None) == {}


def test_one_package_installer_and_images_alone():
    with pytest.raises(ValueError, match="one of 'pip', 'uv' and 'conda'"):
        RuntimeEnv(pip=["a"], conda="env")
    with pytest.raises(ValueError, match="'image_uri'.*only be combined with 'config' and 'env_vars', not \\['pip'\\]"):
        RuntimeEnv(image_uri="repo/img:1", pip=["a"])
    assert RuntimeEnv(image_uri="repo/img:1", env_vars={"A": "1"})["image_uri"] == "repo/img:1"


def test_config():
    env = RuntimeEnv(config={"setup_timeout_seconds": 30})
    assert isinstance(env["config"], RuntimeEnvConfig)
    assert env["config"] == {"setup_timeout_seconds": 30, "eager_install": True, "log_files": []}
    assert RuntimeEnvConfig.default_config()["setup_timeout_seconds"] == 600
    with pytest.raises(ValueError, match="setup_timeout_seconds must be > 0, or -1"):
        RuntimeEnvConfig(setup_timeout_seconds=0)
    assert RuntimeEnvConfig(setup_timeout_seconds=-1)["setup_timeout_seconds"] == -1
    with pytest.raises(TypeError, match="eager_install must be a bool"):
        RuntimeEnvConfig(eager_install="yes")
    with pytest.raises(ValueError, match="unknown runtime_env\\['config'\\] key"):
        RuntimeEnv(config={"timeout": 3})


def test_serialize_round_trip():
    env = RuntimeEnv(env_vars={"A": "1"}, config=RuntimeEnvConfig(eager_install=False))
    text = env.serialize()
    assert json.loads(text)["env_vars"] == {"A": "1"}
    back = RuntimeEnv.deserialize(text)
    assert back == env and isinstance(back, RuntimeEnv)
    assert env.to_dict()["config"] == {"setup_timeout_seconds": 600, "eager_install": False, "log_files": []}
    assert type(env.to_dict()["config"]) is dict


@pytest.mark.parametrize("empty", [None, {}, RuntimeEnv(), {"env_vars": {}}])
def test_an_empty_runtime_env_is_none(empty):
    assert validate(empty, "a remote function") is None


def test_what_ember_does_not_build_is_refused_clearly(tmp_path):
    with pytest.raises(NotImplementedError, match="the runtime_env given to a remote function sets conda, which "
                                                  "Ember does not build; it builds config, env_vars, excludes"):
        validate({"conda": "env", "env_vars": {"A": "1"}}, "a remote function")
    with pytest.raises(ValueError, match="unknown runtime_env key"):  # malformed: said before "unsupported"
        validate({"pipp": ["x"]}, "an actor")
    with pytest.raises(TypeError, match="must be a dict or an ember.runtime_env.RuntimeEnv, got list"):
        validate(["pip"], "an actor")
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=f"working_dir'\\] '{missing}' \\(given to an actor\\) does not exist"):
        validate({"working_dir": missing}, "an actor")
    with pytest.raises(ValueError, match="py_modules'\\] entry .* does not exist"):
        validate({"py_modules": [missing]}, "an actor")
    with pytest.raises(ValueError, match="requirements file .* does not exist"):
        validate({"pip": missing}, "an actor")
    with pytest.raises(ValueError, match=r"runtime_env\['pip'\] has unknown keys \['pip_chek'\]"):
        validate({"pip": {"packages": ["x"], "pip_chek": False}}, "an actor")
    assert validate({"env_vars": {"A": "1"}, "working_dir": str(tmp_path)}, "x") == {
        "env_vars": {"A": "1"}, "working_dir": str(tmp_path)}
