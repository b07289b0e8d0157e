"""A resolved runtime environment: what a worker needs, with local paths
replaced by package URIs, in one canonical JSON text (TaskSpec.runtime_env).
Equal environments have equal texts, so the text itself keys the worker
pool and the node's environment cache; "" is the default environment.

The SDK builds it (ember._private.runtime_env_support); raylets parse it
(refusing anything they do not know) and build it on their node
(ember_raylet.runtime_envs)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

DEFAULT_SETUP_TIMEOUT_S = 600.0
_KEYS = {"env_vars", "working_dir", "py_modules", "pip", "setup_timeout_s"}


@dataclasses.dataclass(frozen=True)
class PipSpec:
    """Requirement lines (a requirements file's lines are sent as they
    are) and extra `pip install` options (Ray's pip_install_options)."""

    packages: tuple[str, ...]
    install_options: tuple[str, ...] = ()

    def digest(self) -> str:
        text = json.dumps([list(self.packages), list(self.install_options)])
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class ResolvedEnv:
    env_vars: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""  # a package URI
    py_modules: tuple[str, ...] = ()  # package URIs
    pip: PipSpec | None = None
    setup_timeout_s: float = DEFAULT_SETUP_TIMEOUT_S

    def is_default(self) -> bool:
        return not (self.env_vars or self.working_dir or self.py_modules or self.pip)

    def to_json(self) -> str:
        """The canonical text; "" for the default environment."""
        if self.is_default():
            return ""
        fields: dict[str, Any] = {}
        if self.env_vars:
            fields["env_vars"] = dict(self.env_vars)
        if self.working_dir:
            fields["working_dir"] = self.working_dir
        if self.py_modules:
            fields["py_modules"] = list(self.py_modules)
        if self.pip is not None:
            fields["pip"] = {"packages": list(self.pip.packages), "pip_install_options": list(self.pip.install_options)}
        if self.setup_timeout_s != DEFAULT_SETUP_TIMEOUT_S:
            fields["setup_timeout_s"] = self.setup_timeout_s
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "ResolvedEnv":
        """Parse and check one; ValueError says what is wrong."""
        if not text:
            return cls()
        try:
            fields = json.loads(text)
        except ValueError as e:
            raise ValueError(f"runtime_env is not JSON: {e}") from None
        if not isinstance(fields, dict) or set(fields) - _KEYS:
            unknown = sorted(set(fields) - _KEYS) if isinstance(fields, dict) else fields
            raise ValueError(f"runtime_env has unknown keys {unknown}; known: {sorted(_KEYS)}")
        env_vars = fields.get("env_vars", {})
        if not isinstance(env_vars, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in env_vars.items()):
            raise ValueError("runtime_env env_vars must map strings to strings")
        working_dir = fields.get("working_dir", "")
        py_modules = fields.get("py_modules", [])
        if not isinstance(working_dir, str) or not isinstance(py_modules, list) or not all(
                isinstance(m, str) for m in py_modules):
            raise ValueError("runtime_env working_dir must be a package URI and py_modules a list of them")
        pip = None
        if "pip" in fields:
            raw = fields["pip"]
            if (not isinstance(raw, dict) or set(raw) - {"packages", "pip_install_options"}
                    or not all(isinstance(p, str) for p in raw.get("packages", []))
                    or not all(isinstance(p, str) for p in raw.get("pip_install_options", []))):
                raise ValueError("runtime_env pip must be {'packages': [str], 'pip_install_options': [str]}")
            pip = PipSpec(tuple(raw.get("packages", [])), tuple(raw.get("pip_install_options", [])))
        timeout = fields.get("setup_timeout_s", DEFAULT_SETUP_TIMEOUT_S)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise ValueError("runtime_env setup_timeout_s must be a number")
        return cls(tuple(sorted(env_vars.items())), working_dir, tuple(py_modules), pip, float(timeout))

    def merged_under(self, child: "ResolvedEnv", child_keys: set[str]) -> "ResolvedEnv":
        """`child` (a task's or actor's) over this one (its job's or
        parent's), as Ray merges them: each key the child sets replaces
        the parent's, except env_vars, merged key by key (the child's win)."""
        env_vars = dict(self.env_vars)
        env_vars.update(child.env_vars)
        return ResolvedEnv(
            env_vars=tuple(sorted(env_vars.items())),
            working_dir=child.working_dir if "working_dir" in child_keys else self.working_dir,
            py_modules=child.py_modules if "py_modules" in child_keys else self.py_modules,
            pip=child.pip if "pip" in child_keys else self.pip,
            setup_timeout_s=child.setup_timeout_s if "config" in child_keys else self.setup_timeout_s,
        )
