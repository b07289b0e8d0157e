"""The worker zygote: one process per raylet that has imported the worker
code once and forks a worker per request.

A fresh `python -m ember._private.worker` costs ~130 ms of CPU before it
can run anything; a fork of this pre-imported process costs a few ms, and
its workers share the imported modules' memory with it (copy-on-write).
The zygote is single-threaded and never loads gRPC, so forking is safe.

Protocol, on the zygote's stdin/stdout (one JSON object or word line each):
  zygote -> raylet: "ready"                         imports done (first line)
  raylet -> zygote: {"argv": [...], "log": PATH}   fork a worker
  zygote -> raylet: "pid N"                         its pid, in request order
  zygote -> raylet: "exit N CODE"                   a worker exited (CODE < 0: signal)
EOF on stdin (the raylet stopped or died) ends the zygote; its workers
notice their parent is gone and exit too. The zygote's own arguments (the
workers' common flags) are informational: they make its command line, which
its workers show, name the session.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
import traceback

from ember._private import worker


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")


def _say(line: str) -> None:
    data = (line + "\n").encode()
    while data:  # a signal may interrupt us mid-line: finish it
        try:
            data = data[os.write(1, data):]
        except InterruptedError:
            continue


def _child(request: dict, zygote_pid: int, wakeup: tuple[int, int]) -> None:
    """In the forked worker: become `python -m ember._private.worker`."""
    signal.set_wakeup_fd(-1)
    for fd in wakeup:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the user's subprocesses are theirs to wait for
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # also drops our copy of the zygote's request pipe
    os.dup2(log, 1)   # and of its reply pipe
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    argv = [*request["argv"], "--parent-pid", str(zygote_pid)]
    sys.argv = ["ember-worker", *argv]
    worker.main(argv)


def main() -> None:
    # SIGCHLD only wakes the loop (through the wakeup fd), which reaps: a
    # handler that reaps would not run while the loop blocks in a read it
    # entered just after the signal came, and the exit would go unreported
    # until the next request.
    wakeup = os.pipe()
    for fd in wakeup:
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wakeup[1], warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    zygote_pid = os.getpid()
    _say("ready")
    pending = b""
    while True:
        readable, _, _ = select.select([0, wakeup[0]], [], [])
        if wakeup[0] in readable:
            while True:
                try:
                    if not os.read(wakeup[0], 512):
                        break
                except BlockingIOError:
                    break
            _reap()
        if 0 not in readable:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return  # EOF: the raylet stopped or died
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            _fork(json.loads(line), zygote_pid, wakeup)


def _fork(request: dict, zygote_pid: int, wakeup: tuple[int, int]) -> None:
    # No SIGCHLD handler may run between fork and the child's reset.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    # The child's garbage collections then skip what was imported here,
    # and leave those pages shared instead of writing to each object.
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            _child(request, zygote_pid, wakeup)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _say(f"pid {pid}")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


if __name__ == "__main__":
    main()
