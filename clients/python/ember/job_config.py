"""`ember.job_config.JobConfig`: how a driver's job runs (Ray's class).

Given to `ember.init(job_config=...)`; its namespace, code search path and
default actor lifetime reach every task and actor of the job.
"""

from __future__ import annotations

import json
from typing import Any

from ember_common.job_settings import ActorLifetime, validate_namespace

__all__ = ["JobConfig"]


class JobConfig:
    """The configuration of a job.

    code_search_path: directories put first on the import path of the
    job's workers (Ray: their PYTHONPATH); relative ones are taken from the
    driver's working directory. runtime_env: as ember.init's. metadata: str -> str pairs,
    kept with the job in the GCS. ray_namespace: the job's namespace
    (default: the shared "" one, see docs/architecture.md).
    default_actor_lifetime: "detached" makes actors created without
    `lifetime=` outlive the job. jvm_options: accepted for Ray's programs;
    Ember starts no Java workers. _py_driver_sys_path: more entries for
    the workers' import path, after the driver's own.
    """

    def __init__(
        self,
        jvm_options: list[str] | None = None,
        code_search_path: list[str] | tuple[str, ...] | None = None,
        runtime_env: dict[str, Any] | None = None,
        _client_job: bool = False,
        metadata: dict[str, str] | None = None,
        ray_namespace: str | None = None,
        default_actor_lifetime: str = "non_detached",
        _py_driver_sys_path: list[str] | None = None,
    ) -> None:
        self.jvm_options: list[str] = _strings(jvm_options or [], "jvm_options")
        if not isinstance(code_search_path or [], (list, tuple)):
            raise TypeError(f"code_search_path must be a list or tuple of paths, got {type(code_search_path).__name__}")
        self.code_search_path: list[str] = _strings(code_search_path or [], "code_search_path")
        self.metadata: dict[str, str] = {}
        for key, value in (metadata or {}).items():
            self.set_metadata(key, value)
        self.ray_namespace: str | None = None
        if ray_namespace is not None:
            self.set_ray_namespace(ray_namespace)
        self.runtime_env: dict[str, Any] | None = None
        self.set_runtime_env(runtime_env)
        self.default_actor_lifetime = ActorLifetime.NON_DETACHED
        self.set_default_actor_lifetime(default_actor_lifetime)
        self._client_job = _client_job
        self._py_driver_sys_path: list[str] = list(_py_driver_sys_path or [])

    def set_metadata(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"job metadata is str -> str, got {type(key).__name__} -> {type(value).__name__}")
        self.metadata[key] = value

    def set_ray_namespace(self, ray_namespace: str) -> None:
        self.ray_namespace = validate_namespace(ray_namespace)

    def set_runtime_env(self, runtime_env: dict[str, Any] | None, validate: bool = False) -> None:
        """Kept as given; `ember.init` refuses a non-empty one (validate=True
        checks it here, at once)."""
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict or an ember.runtime_env.RuntimeEnv, "
                            f"got {type(runtime_env).__name__}")
        if validate:
            from ember._private.runtime_env_support import validate

            validate(runtime_env, "a JobConfig")
        self.runtime_env = runtime_env

    def set_default_actor_lifetime(self, default_actor_lifetime: str) -> None:
        try:
            self.default_actor_lifetime = ActorLifetime(default_actor_lifetime)
        except ValueError:
            raise ValueError(f"default_actor_lifetime must be 'detached' or 'non_detached', "
                             f"got {default_actor_lifetime!r}") from None

    @classmethod
    def from_json(cls, job_config_json: str | dict[str, Any]) -> JobConfig:
        """A JobConfig from its JSON form (a str or the parsed dict), Ray's keys."""
        data = json.loads(job_config_json) if isinstance(job_config_json, str) else dict(job_config_json)
        known = {"jvm_options", "code_search_path", "runtime_env", "metadata", "ray_namespace",
                 "default_actor_lifetime"}
        if not isinstance(data, dict) or set(data) - known:
            unknown = sorted(set(data) - known) if isinstance(data, dict) else data
            raise ValueError(f"not a JobConfig: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**{key: value for key, value in data.items() if value is not None})

    def __repr__(self) -> str:
        return (f"JobConfig(code_search_path={self.code_search_path!r}, runtime_env={self.runtime_env!r}, "
                f"metadata={self.metadata!r}, ray_namespace={self.ray_namespace!r}, "
                f"default_actor_lifetime={self.default_actor_lifetime.value!r})")


def _strings(values: Any, what: str) -> list[str]:
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"{what} must hold strings, got {list(values)!r}")
    return list(values)
