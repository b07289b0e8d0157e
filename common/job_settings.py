"""What every worker running a job's code must know of the job: its import
path, namespace and default actor lifetime.

The driver stores them in the GCS KV when it connects (`job/<job id>/settings`,
JSON); a worker reads them the first time it meets the job, through its
raylet's cached `kv_get`. Workers are shared between jobs, so a job's
settings are looked up by the job id of the running task, never kept as
the process's own."""

from __future__ import annotations

import dataclasses
import enum
import json

KV_NAMESPACE = "job"


class ActorLifetime(str, enum.Enum):
    """Ray's lifetimes: a non-detached actor ends with its owner."""

    DETACHED = "detached"
    NON_DETACHED = "non_detached"


@dataclasses.dataclass(frozen=True)
class JobSettings:
    namespace: str = ""
    # First on a worker's import path: JobConfig(code_search_path=...).
    code_search_path: tuple[str, ...] = ()
    # After the worker's own entries: the driver's cwd and sys.path, so what
    # it pickled by reference (its own modules' functions) imports there.
    driver_sys_path: tuple[str, ...] = ()
    default_actor_lifetime: ActorLifetime = ActorLifetime.NON_DETACHED

    def to_json(self) -> bytes:
        return json.dumps({
            "namespace": self.namespace,
            "code_search_path": list(self.code_search_path),
            "driver_sys_path": list(self.driver_sys_path),
            "default_actor_lifetime": self.default_actor_lifetime.value,
        }).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> JobSettings:
        data = json.loads(raw)
        return cls(
            namespace=data["namespace"],
            code_search_path=tuple(data["code_search_path"]),
            driver_sys_path=tuple(data["driver_sys_path"]),
            default_actor_lifetime=ActorLifetime(data["default_actor_lifetime"]),
        )


def kv_key(job_id: bytes) -> bytes:
    return job_id + b"/settings"


def validate_namespace(namespace: object) -> str:
    """A namespace as Ray takes it: a non-empty str (the GCS checks length and NUL)."""
    if not isinstance(namespace, str):
        raise TypeError(f"a namespace must be a str, got {type(namespace).__name__}")
    if namespace == "":
        raise ValueError('"" is not a valid namespace; pass None for the default one')
    return namespace
