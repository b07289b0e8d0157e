"""Runtime environments on this node: built when a task first needs one,
cached, and deleted once no worker or queued task has used them for a
grace period.

An environment (TaskSpec.runtime_env, canonical JSON) is built from parts
shared between environments: packages (working_dir, py_modules) fetched
from the GCS KV and unpacked under `pkg/<sha256>`, and virtual
environments under `pip/<digest of the requirements>`. Each part is built
once per node even when many environments or tasks want it at the same
moment (an in-flight table of futures); a failed build fails every task
waiting on it with what went wrong (pip's output), and leaves nothing
half-built behind.

Why venvs see Ember: a venv made by `python -m venv --system-site-packages`
from the raylet's interpreter sees the base interpreter's site-packages,
not those of the virtualenv Ember may be installed in; a .pth file in the
new venv adds the raylet's own site-packages after the venv's, so
requirements installed in the venv win and `import ember` works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import shutil
import site
import sys
import time
from typing import Awaitable, Callable

from ember_common import runtime_env_packages as packages
from ember_common.runtime_env_spec import PipSpec, ResolvedEnv

log = logging.getLogger(__name__)

ENV_VAR = "EMBER_RUNTIME_ENV"  # (ember._private.runtime_env_support reads these two in the worker)
PATHS_VAR = "EMBER_RUNTIME_ENV_PATHS"
# pip's output kept for the error message: its end says what failed.
_PIP_OUTPUT_TAIL = 4000


class RuntimeEnvSetupFailed(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class WorkerSetup:
    """How to start a worker in an environment."""

    python: str
    cwd: str | None
    env: dict[str, str]  # added to the raylet's environment


@dataclasses.dataclass
class _Ready:
    setup: WorkerSetup
    parts: tuple[str, ...]  # the directories it is built from (kept while it is)
    last_used: float


class RuntimeEnvs:
    def __init__(self, root: pathlib.Path, fetch: Callable[[str], Awaitable[bytes]],
                 on_ready: Callable[[str], None], on_failed: Callable[[str, str], None],
                 grace_s: float, python: str = sys.executable) -> None:
        self._root = root
        self._fetch = fetch  # a package's bytes by URI
        self._on_ready = on_ready
        self._on_failed = on_failed
        self._grace_s = grace_s
        self._python = python
        self._ready: dict[str, _Ready] = {}
        self._building: dict[str, asyncio.Task[None]] = {}
        self._errors: dict[str, str] = {}  # why the last build of an environment failed
        self._inflight: dict[str, asyncio.Future[str]] = {}  # part key -> its directory, once built
        self.num_builds = 0  # parts built (not found in the cache): packages unpacked, venvs made

    def is_ready(self, env: str) -> bool:
        return env in self._ready

    def setup(self, env: str) -> WorkerSetup:
        ready = self._ready[env]
        ready.last_used = time.monotonic()
        return ready.setup

    def forget(self, env: str) -> None:
        """`env` is to be built again (a worker could not start in it)."""
        self._ready.pop(env, None)

    def prepare(self, env: str) -> None:
        """Start building `env` unless it is built or being built; the
        node manager hears of the end through on_ready / on_failed."""
        if env in self._ready or env in self._building:
            return
        self._errors.pop(env, None)
        self._building[env] = asyncio.get_running_loop().create_task(self._build(env))

    async def ensure(self, env: str) -> WorkerSetup:
        """`env` built (or being built) and waited for; RuntimeEnvSetupFailed says why not."""
        self.prepare(env)
        building = self._building.get(env)
        if building is not None:
            await asyncio.shield(building)
        if env not in self._ready:
            raise RuntimeEnvSetupFailed(self._errors.get(env, "the runtime environment was not built"))
        return self.setup(env)

    async def _build(self, env: str) -> None:
        try:
            spec = ResolvedEnv.from_json(env)
            setup, parts = await asyncio.wait_for(self._setup(env, spec), spec.setup_timeout_s)
        except asyncio.TimeoutError:
            self._failed(env, f"setting the runtime environment up took longer than its setup_timeout_seconds "
                              f"({ResolvedEnv.from_json(env).setup_timeout_s:.0f} s)")
        except Exception as e:  # what went wrong goes to the tasks that need it
            if not isinstance(e, RuntimeEnvSetupFailed):
                log.exception("building runtime env %s failed", env[:200])
            self._failed(env, str(e) or type(e).__name__)
        else:
            self._building.pop(env, None)
            self._ready[env] = _Ready(setup, parts, time.monotonic())
            self._on_ready(env)

    def _failed(self, env: str, message: str) -> None:
        self._building.pop(env, None)
        self._errors[env] = message
        self._on_failed(env, message)

    async def _setup(self, env: str, spec: ResolvedEnv) -> tuple[WorkerSetup, tuple[str, ...]]:
        paths: list[str] = []
        cwd = None
        if spec.working_dir:
            cwd = await self._package(spec.working_dir)
            paths.append(cwd)
        for uri in spec.py_modules:
            paths.append(await self._package(uri))
        variables = dict(spec.env_vars)
        variables[ENV_VAR] = env
        variables[PATHS_VAR] = os.pathsep.join(paths)
        python = self._python
        parts = list(paths)
        if spec.pip is not None:
            venv = await self._venv(spec.pip)
            parts.append(venv)
            python = os.path.join(venv, "bin", "python")
            variables["VIRTUAL_ENV"] = venv
            path = variables.get("PATH", os.environ.get("PATH", ""))
            variables["PATH"] = os.path.join(venv, "bin") + os.pathsep + path
        return WorkerSetup(python, cwd, variables), tuple(parts)

    async def _once(self, key: str, build: Callable[[], Awaitable[str]]) -> str:
        """The result of `build`, run once however many callers ask at once."""
        future = self._inflight.get(key)
        if future is None:
            future = self._inflight[key] = asyncio.ensure_future(build())
            future.add_done_callback(lambda _f: self._inflight.pop(key, None))
        return await asyncio.shield(future)

    async def _package(self, uri: str) -> str:
        digest = packages.digest_of(uri)
        dest = self._root / "pkg" / digest

        async def build() -> str:
            if not dest.exists():
                data = await self._fetch(uri)
                self.num_builds += 1
                log.info("unpacking runtime_env package %s (%d bytes)", digest[:12], len(data))
                await asyncio.to_thread(packages.unpack, data, dest)
            return str(dest)

        return await self._once(f"pkg:{digest}", build)

    async def _venv(self, pip: PipSpec) -> str:
        digest = pip.digest()
        dest = self._root / "pip" / digest

        async def build() -> str:
            if (dest / ".ready").exists():
                return str(dest)
            self.num_builds += 1
            log.info("installing pip requirements %s into %s", list(pip.packages), dest)
            await asyncio.to_thread(shutil.rmtree, dest, True)  # a build cut short earlier
            try:
                await _run([self._python, "-m", "venv", "--system-site-packages", "--without-pip", str(dest)],
                           "creating the virtual environment")
                site_dir = pathlib.Path(await _site_packages(str(dest / "bin" / "python")))
                parents = [p for p in (*site.getsitepackages(), site.getusersitepackages()) if os.path.isdir(p)]
                (site_dir / "_ember_parent_site.pth").write_text(
                    "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents) + "\n")
                (dest / "requirements.txt").write_text("\n".join(pip.packages) + "\n")
                await _run([self._python, "-m", "pip", "--python", str(dest / "bin" / "python"), "install",
                            "--disable-pip-version-check", "--no-input", *pip.install_options,
                            "-r", str(dest / "requirements.txt")], "pip install")
                (dest / ".ready").write_text("")
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, dest, True)
                raise
            return str(dest)

        return await self._once(f"pip:{digest}", build)

    def collect(self, in_use: set[str], now: float) -> list[pathlib.Path]:
        """Forget environments nobody has used for the grace period; the
        parts no remaining one uses are moved aside (a rename: quick, on
        the loop) and returned, for the caller to delete off the loop.
        Nothing is collected while a build runs (it may be reusing a part)."""
        for env in in_use:
            ready = self._ready.get(env)
            if ready is not None:
                ready.last_used = now
        for env in [e for e, r in self._ready.items() if e not in in_use and now - r.last_used >= self._grace_s]:
            del self._ready[env]
            log.info("runtime env unused for %.0fs: forgotten", self._grace_s)
        if self._building or self._inflight:
            return []
        kept = {part for ready in self._ready.values() for part in ready.parts}
        trash = []
        for kind in ("pkg", "pip"):
            folder = self._root / kind
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith("."):
                    if entry.name.startswith(".trash-"):
                        trash.append(entry)  # (left by a collection cut short)
                    continue
                if str(entry) not in kept:
                    aside = folder / f".trash-{entry.name}"
                    os.rename(entry, aside)
                    trash.append(aside)
        return trash

    def close(self) -> None:
        for task in self._building.values():
            task.cancel()


async def _site_packages(python: str) -> str:
    process = await asyncio.create_subprocess_exec(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeEnvSetupFailed(f"the new virtual environment's python failed: {out.decode(errors='replace')}")
    return out.decode().strip()


async def _run(argv: list[str], what: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PIP_NO_INPUT": "1"})
    try:
        out, _ = await process.communicate()
    except BaseException:  # (cancelled: a timeout) the child goes too
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        text = out.decode(errors="replace")[-_PIP_OUTPUT_TAIL:]
        raise RuntimeEnvSetupFailed(f"{what} failed (exit code {process.returncode}):\n{text}")
