"""`RuntimeEnv` and `RuntimeEnvConfig`, Ray's classes for describing a
runtime environment (`ray.runtime_env`): dicts of Ray's known keys, checked
as they are set.

Ember does not build runtime environments yet: a non-empty one given to
`.options(runtime_env=...)` or `@ember.remote(runtime_env=...)` is refused
(see `ember._private.runtime_env_support`), never silently ignored.

    env = RuntimeEnv(env_vars={"MODE": "fast"}, pip=["requests"])
    env["env_vars"]                   # {"MODE": "fast"}
    RuntimeEnv(pip_packages=["x"])    # ValueError: unknown runtime_env key 'pip_packages'
"""

from __future__ import annotations

import copy
import json
import types
from typing import Any, Callable

__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]

DEFAULT_SETUP_TIMEOUT_SECONDS = 600  # Ray's


class RuntimeEnvConfig(dict):
    """How a runtime environment is set up (not what it contains)."""

    known_fields: frozenset[str] = frozenset({"setup_timeout_seconds", "eager_install", "log_files"})

    def __init__(self, setup_timeout_seconds: int = DEFAULT_SETUP_TIMEOUT_SECONDS, eager_install: bool = True,
                 log_files: list[str] | None = None) -> None:
        super().__init__()
        if not isinstance(setup_timeout_seconds, int) or isinstance(setup_timeout_seconds, bool):
            raise TypeError(f"setup_timeout_seconds must be an int, got {type(setup_timeout_seconds).__name__}")
        if setup_timeout_seconds <= 0 and setup_timeout_seconds != -1:
            raise ValueError(f"setup_timeout_seconds must be > 0, or -1 for no timeout, got {setup_timeout_seconds}")
        if not isinstance(eager_install, bool):
            raise TypeError(f"eager_install must be a bool, got {type(eager_install).__name__}")
        if log_files is None:
            log_files = []
        if not isinstance(log_files, list) or not all(isinstance(f, str) for f in log_files):
            raise TypeError(f"log_files must be a list of strings or None, got {log_files!r}")
        self["setup_timeout_seconds"] = setup_timeout_seconds
        self["eager_install"] = eager_install
        self["log_files"] = log_files

    @classmethod
    def default_config(cls) -> "RuntimeEnvConfig":
        return cls()

    @staticmethod
    def parse_and_validate_runtime_env_config(config: Any) -> "RuntimeEnvConfig":
        if isinstance(config, RuntimeEnvConfig):
            return config
        if not isinstance(config, dict):
            raise TypeError(f"runtime_env['config'] must be a dict or a RuntimeEnvConfig, got {type(config).__name__}")
        unknown = set(config) - RuntimeEnvConfig.known_fields
        if unknown:  # (Ray warns and drops them; a typo here would silently lose a setting)
            raise ValueError(f"unknown runtime_env['config'] key(s) {sorted(unknown)}; "
                             f"known: {sorted(RuntimeEnvConfig.known_fields)}")
        return RuntimeEnvConfig(**config)

    def to_dict(self) -> dict[str, Any]:
        return dict(copy.deepcopy(self))


def _check_str(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"runtime_env[{key!r}] must be a string, got {type(value).__name__}")
    return value


def _check_str_list(key: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"runtime_env[{key!r}] must be a list of strings, got {value!r}")
    return value or None  # an empty list means nothing (as Ray)


def _check_py_modules(key: str, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, (str, types.ModuleType)) for v in value):
        raise TypeError(f"runtime_env[{key!r}] must be a list of paths, URIs or modules, got {value!r}")
    return value


def _check_env_vars(key: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"runtime_env['env_vars'] must be a dict of str to str, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"runtime_env['env_vars'] must be a dict of str to str, but {k!r}: {v!r} is "
                            f"{type(k).__name__}: {type(v).__name__}")
    return value or None  # an empty dict means nothing (as Ray)


def _check_packages(key: str, value: Any) -> Any:
    # A requirements file, a list of requirements, or Ray's dict form ({"packages": [...], ...}).
    if isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict) and "packages" in value:
        return value
    raise TypeError(f"runtime_env[{key!r}] must be a requirements file, a list of requirements or a dict with "
                    f"'packages', got {value!r}")


def _check_conda(key: str, value: Any) -> Any:
    if not isinstance(value, (str, dict)):
        raise TypeError(f"runtime_env['conda'] must be an environment name, a YAML file or a dict, got {value!r}")
    return value


def _check_dict(key: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"runtime_env[{key!r}] must be a dict, got {type(value).__name__}")
    return value


def _check_setup_hook(key: str, value: Any) -> Any:
    if not isinstance(value, str) and not callable(value):
        raise TypeError(f"runtime_env['worker_process_setup_hook'] must be a callable or a module path, got {value!r}")
    return value


def _check_config(key: str, value: Any) -> Any:
    return RuntimeEnvConfig.parse_and_validate_runtime_env_config(value)


def _keep(key: str, value: Any) -> Any:
    return value


# Ray's known keys, each with its check (which may normalise: None drops the key).
_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "working_dir": _check_str,
    "py_modules": _check_py_modules,
    "py_executable": _check_str,
    "excludes": _check_str_list,
    "pip": _check_packages,
    "uv": _check_packages,
    "conda": _check_conda,
    "container": _check_dict,
    "image_uri": _check_str,
    "env_vars": _check_env_vars,
    "config": _check_config,
    "worker_process_setup_hook": _check_setup_hook,
    "java_jars": _check_str_list,
    "_nsight": _keep,
    "_rocprof_sys": _keep,
}
# What a container image can be combined with (Ray's rule for container and image_uri).
_WITH_IMAGE = {"container", "image_uri", "config", "env_vars"}


class RuntimeEnv(dict):
    """What a job, task or actor runs in: working_dir, py_modules, pip / uv /
    conda, container / image_uri, env_vars, excludes, config,
    worker_process_setup_hook, ... (Ray's keys). A plain dict with the same
    keys is accepted wherever a RuntimeEnv is."""

    known_fields: frozenset[str] = frozenset(_FIELDS)

    def __init__(
        self,
        *,
        py_modules: list[Any] | None = None,
        py_executable: str | None = None,
        working_dir: str | None = None,
        pip: Any = None,
        conda: Any = None,
        container: dict[str, Any] | None = None,
        env_vars: dict[str, str] | None = None,
        worker_process_setup_hook: Callable[[], None] | str | None = None,
        nsight: Any = None,
        rocprof_sys: Any = None,
        config: dict[str, Any] | RuntimeEnvConfig | None = None,
        _validate: bool = True,
        image_uri: str | None = None,
        uv: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        given = {"py_modules": py_modules, "py_executable": py_executable, "working_dir": working_dir, "pip": pip,
                 "conda": conda, "container": container, "env_vars": env_vars,
                 "worker_process_setup_hook": worker_process_setup_hook, "_nsight": nsight,
                 "_rocprof_sys": rocprof_sys, "config": config, "image_uri": image_uri, "uv": uv, **kwargs}
        given = {k: v for k, v in given.items() if v is not None}
        if not _validate:  # (deserialize: already checked when it was made)
            super().update(given)
            return
        for key, value in given.items():
            self[key] = value
        installers = [k for k in ("pip", "uv", "conda") if k in self]
        if len(installers) > 1:
            raise ValueError(f"runtime_env takes one of 'pip', 'uv' and 'conda', not {installers} together "
                             "(for pip packages in a conda environment, list them in the conda spec)")
        for image_key in ("container", "image_uri"):
            if image_key in self and set(self) - _WITH_IMAGE:
                raise ValueError(f"runtime_env[{image_key!r}] can only be combined with 'config' and 'env_vars', "
                                 f"not {sorted(set(self) - _WITH_IMAGE)}")

    def __setitem__(self, key: str, value: Any) -> None:
        check = _FIELDS.get(key)
        if check is None:
            raise ValueError(f"unknown runtime_env key {key!r}; known: {', '.join(sorted(_FIELDS))}")
        value = check(key, value)
        if value is None:
            self.pop(key, None)
        else:
            super().__setitem__(key, value)

    def set(self, name: str, value: Any) -> None:
        self[name] = value

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self.get(key)

    # Ray's accessors of what the environment asks for.
    def working_dir(self) -> str:
        return self.get("working_dir", "")

    def has_working_dir(self) -> bool:
        return "working_dir" in self

    def py_modules(self) -> list[Any]:
        return list(self.get("py_modules", []))

    def py_executable(self) -> str | None:
        return self.get("py_executable")

    def java_jars(self) -> list[str]:
        return list(self.get("java_jars", []))

    def env_vars(self) -> dict[str, str]:
        return dict(self.get("env_vars", {}))

    def has_pip(self) -> bool:
        return "pip" in self

    def has_uv(self) -> bool:
        return "uv" in self

    def has_conda(self) -> bool:
        return "conda" in self

    def image_uri(self) -> str | None:
        return self.get("image_uri")

    def to_dict(self) -> dict[str, Any]:
        env = dict(copy.deepcopy(self))
        if "config" in env:
            env["config"] = dict(env["config"])
        return env

    def serialize(self) -> str:
        return json.dumps(type(self)(**self), sort_keys=True)

    @classmethod
    def deserialize(cls, serialized_runtime_env: str) -> "RuntimeEnv":
        return cls(_validate=False, **json.loads(serialized_runtime_env))
