"""runtime_env on the SDK's side: checked where it is given (Ray's keys and
types; the keys Ember does not build are refused, never ignored), then
resolved when a task, actor or job first uses it: local directories and
wheels packed and uploaded once by content hash (ember_common.
runtime_env_packages), a requirements file read, and the result merged
with the parent's environment (the job's in a driver, the worker's own in
a task) into the canonical text a TaskSpec carries."""

from __future__ import annotations

import os
import threading
import types
from typing import Any, Callable

from ember.v1 import gcs_pb2

from ember_common import runtime_env_packages as packages
from ember_common.runtime_env_spec import PipSpec, ResolvedEnv

# Set in a worker's environment by its raylet: the worker's own resolved
# environment (what its tasks' children inherit) and its import paths.
ENV_VAR = "EMBER_RUNTIME_ENV"
PATHS_VAR = "EMBER_RUNTIME_ENV_PATHS"
# Set by the job service for a submitted job's driver: the job's environment.
JOB_ENV_VAR = "EMBER_JOB_RUNTIME_ENV"

SUPPORTED = frozenset({"working_dir", "py_modules", "excludes", "pip", "env_vars", "config"})
_PIP_DICT_KEYS = {"packages", "pip_install_options", "pip_check", "pip_version"}


def validate(runtime_env: Any, where: str) -> dict[str, Any] | None:
    """The runtime_env checked (None for None or an empty one): TypeError or
    ValueError for a malformed one or a missing path, NotImplementedError
    for a key Ember does not build. `where` names what it was given to."""
    if runtime_env is None:
        return None
    from ember.runtime_env import RuntimeEnv  # (only when one is given)

    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a dict or an ember.runtime_env.RuntimeEnv, "
                        f"got {type(runtime_env).__name__}")
    if not all(isinstance(k, str) for k in runtime_env):
        raise TypeError(f"runtime_env keys must be strings, got {sorted(map(repr, runtime_env))}")
    env = runtime_env if isinstance(runtime_env, RuntimeEnv) else RuntimeEnv(**runtime_env)
    if not env:
        return None
    unsupported = sorted(set(env) - SUPPORTED)
    if unsupported:
        raise NotImplementedError(
            f"the runtime_env given to {where} sets {', '.join(unsupported)}, which Ember does not build; "
            f"it builds {', '.join(sorted(SUPPORTED))}")
    working_dir = env.get("working_dir")
    if working_dir is not None and not working_dir.startswith("gcs://") and not os.path.exists(working_dir):
        raise ValueError(f"runtime_env['working_dir'] {working_dir!r} (given to {where}) does not exist")
    for module in env.get("py_modules", []):
        path = _module_path(module)
        if not path.startswith("gcs://") and not os.path.exists(path):
            raise ValueError(f"runtime_env['py_modules'] entry {path!r} (given to {where}) does not exist")
    pip = env.get("pip")
    if isinstance(pip, dict) and set(pip) - _PIP_DICT_KEYS:
        raise ValueError(f"runtime_env['pip'] has unknown keys {sorted(set(pip) - _PIP_DICT_KEYS)}; "
                         f"known: {sorted(_PIP_DICT_KEYS)}")
    if isinstance(pip, str) and not os.path.isfile(pip):
        raise ValueError(f"runtime_env['pip'] requirements file {pip!r} (given to {where}) does not exist")
    return dict(env)


def _module_path(module: Any) -> str:
    if isinstance(module, types.ModuleType):
        files = list(getattr(module, "__path__", []))
        if not files:
            raise ValueError(f"py_modules takes packages (a directory), not the single-file module {module.__name__}")
        return files[0]
    return module


class Resolver:
    """Resolves runtime_envs for one client, uploading each package once
    (by content hash) and remembering what it resolved."""

    def __init__(self, gcs: Any) -> None:
        self.gcs = gcs
        self._uploaded: set[str] = set()
        self._resolved: dict[str, ResolvedEnv] = {}
        self._lock = threading.Lock()

    def resolve(self, env: dict[str, Any]) -> ResolvedEnv:
        """A checked runtime_env (validate's) as a ResolvedEnv: raises
        FileNotFoundError / ValueError / PackageTooLarge for what cannot be
        packed, and the GCS's error if the upload fails."""
        import json

        cache_key = json.dumps(env, sort_keys=True, default=str)
        with self._lock:
            found = self._resolved.get(cache_key)
            if found is not None:
                return found
            from ember_common.config import Config

            max_bytes = Config.load().runtime_env_max_bytes
            excludes = env.get("excludes", [])
            working_dir = env.get("working_dir", "")
            if working_dir and not working_dir.startswith("gcs://"):
                working_dir = self._upload(packages.pack(working_dir, excludes, max_bytes))
            py_modules = []
            for module in env.get("py_modules", []):
                path = _module_path(module)
                if not path.startswith("gcs://"):
                    path = self._upload(packages.pack(path, excludes, max_bytes,
                                                      prefix=_module_prefix(path)))
                py_modules.append(path)
            config = env.get("config") or {}
            timeout = config.get("setup_timeout_seconds", 600)
            resolved = ResolvedEnv(
                env_vars=tuple(sorted((env.get("env_vars") or {}).items())), working_dir=working_dir,
                py_modules=tuple(py_modules), pip=_pip_spec(env.get("pip")),
                setup_timeout_s=float(timeout if timeout > 0 else 10**9))
            self._resolved[cache_key] = resolved
            return resolved

    def _upload(self, data: bytes) -> str:
        uri = packages.package_uri(data)
        if uri in self._uploaded:
            return uri
        digest = packages.digest_of(uri)
        ns = packages.KV_NAMESPACE
        if not self.gcs.KvGet(gcs_pb2.KvGetRequest(namespace=ns, key=packages.manifest_key(digest)),
                               timeout=60).found:
            chunks = packages.split(data)
            for i, chunk in enumerate(chunks):
                self.gcs.KvPut(gcs_pb2.KvPutRequest(namespace=ns, key=packages.chunk_key(digest, i), value=chunk,
                                                     overwrite=True), timeout=120)
            # Last: a manifest present means every chunk is (a reader never sees half a package).
            self.gcs.KvPut(gcs_pb2.KvPutRequest(namespace=ns, key=packages.manifest_key(digest),
                                                 value=packages.encode_manifest(data, len(chunks)), overwrite=True),
                            timeout=60)
        self._uploaded.add(uri)
        return uri


def _module_prefix(path: str) -> str:
    """A package directory keeps its name inside the zip (`import name`
    works from the unpacked directory); a wheel is unpacked as it is."""
    return "" if os.path.isfile(path) else os.path.basename(os.path.normpath(path))


def _pip_spec(pip: Any) -> PipSpec | None:
    if pip is None:
        return None
    options: list[str] = []
    if isinstance(pip, str):  # a requirements file, read here (Ray reads it on the driver too)
        with open(pip) as f:
            lines = [line.strip() for line in f]
        packages_ = [line for line in lines if line and not line.startswith("#")]
    elif isinstance(pip, dict):
        packages_ = list(pip.get("packages", []))
        options = list(pip.get("pip_install_options", []))
    else:
        packages_ = list(pip)
    return PipSpec(tuple(packages_), tuple(options)) if packages_ else None


def parent_env() -> ResolvedEnv:
    """What a new task or actor's runtime_env is merged with: in a worker,
    the worker's own environment; in a driver, its job's."""
    from ember._private import runtime

    if runtime.is_worker():
        return ResolvedEnv.from_json(os.environ.get(ENV_VAR, ""))
    return runtime.job_runtime_env()


def task_env_text(runtime_env: dict[str, Any] | None, resolver: Callable[[dict[str, Any]], ResolvedEnv]) -> str:
    """The TaskSpec.runtime_env of a task or actor given `runtime_env`
    (validated, or None): its own over its parent's."""
    parent = parent_env()
    if not runtime_env:
        return parent.to_json()
    return parent.merged_under(resolver(runtime_env), set(runtime_env)).to_json()
