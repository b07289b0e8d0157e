"""What Ember does with a runtime_env today: checks it (Ray's keys and
types) and accepts it only when it asks for nothing. Runtime environments
themselves are not built yet; a non-empty one fails loudly rather than
running the code in an environment it did not ask for."""

from __future__ import annotations

from typing import Any


def refuse_unsupported(runtime_env: Any, where: str) -> None:
    """None, {} or an empty RuntimeEnv pass; anything else raises (TypeError
    or ValueError for a malformed one, NotImplementedError for a valid one).
    `where` names what it was given to ("a remote function", "ember.init")."""
    if runtime_env is None:
        return
    from ember.runtime_env import RuntimeEnv  # (only when one is given)

    if not isinstance(runtime_env, dict):
        raise TypeError(f"runtime_env must be a dict or an ember.runtime_env.RuntimeEnv, "
                        f"got {type(runtime_env).__name__}")
    if not all(isinstance(k, str) for k in runtime_env):
        raise TypeError(f"runtime_env keys must be strings, got {sorted(map(repr, runtime_env))}")
    env = runtime_env if isinstance(runtime_env, RuntimeEnv) else RuntimeEnv(**runtime_env)
    if env:
        raise NotImplementedError(
            f"runtime environments are not supported yet: the runtime_env given to {where} sets "
            f"{', '.join(sorted(env))}; Ember runs tasks and actors in the workers' own environment, so "
            "install what they need on every node (or pass runtime_env=None)")
