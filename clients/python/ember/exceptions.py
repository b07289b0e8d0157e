"""Typed errors that reach the user. Names follow Ray's where Ray's are sound;
Ray's spellings are kept as aliases so `import ember as ray` programs that
catch `ray.exceptions.RayTaskError` keep working."""

from __future__ import annotations

from typing import Any


class EmberError(Exception):
    """Base of every error Ember raises."""


class TaskError(EmberError):
    """A task raised. `get` raises an instance that is also an instance of the
    original exception's class, so `except ValueError` catches it; `cause` is
    the original exception and `traceback_str` the remote traceback."""

    def __init__(
        self,
        function_name: str,
        traceback_str: str,
        cause: BaseException | None = None,
        pid: int | None = None,
        node_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        self.node_id = node_id
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" (pid={self.pid})" if self.pid else ""
        return f"task {self.function_name}{where} failed:\n{self.traceback_str.rstrip()}"

    def __reduce__(self) -> Any:
        return (
            TaskError,
            (self.function_name, self.traceback_str, self.cause, self.pid, self.node_id),
        )

    def __str__(self) -> str:
        return self._message()

    def as_instanceof_cause(self) -> "TaskError":
        """This error as an instance of both TaskError and the cause's class."""
        cause_cls = type(self.cause) if self.cause is not None else None
        if cause_cls is None or isinstance(self.cause, TaskError) and type(self.cause) is TaskError:
            return self
        if issubclass(cause_cls, TaskError):
            return self.cause  # type: ignore[return-value]
        try:
            cls = _dual_class(cause_cls)
            err = cls.__new__(cls)
            err.__dict__.update(getattr(self.cause, "__dict__", {}))
            TaskError.__init__(err, self.function_name, self.traceback_str, self.cause, self.pid, self.node_id)
            err.args = self.cause.args if self.cause is not None else err.args
            return err
        except TypeError:  # the class cannot be subclassed (final, or layout conflict)
            return self


_dual_classes: dict[type, type] = {}


def _dual_class(cause_cls: type) -> type:
    cls = _dual_classes.get(cause_cls)
    if cls is None:

        def __str__(self: TaskError) -> str:
            return TaskError._message(self)

        def __reduce__(self: TaskError) -> Any:
            return TaskError.__reduce__(self)

        cls = type(
            f"TaskError({cause_cls.__name__})",
            (TaskError, cause_cls),
            {"__str__": __str__, "__reduce__": __reduce__, "__module__": __name__},
        )
        _dual_classes[cause_cls] = cls
    return cls


class WorkerCrashedError(EmberError):
    """The worker process running the task died (and retries ran out)."""


class NodeDiedError(EmberError):
    """The node a task or object was on died."""


class TaskUnschedulableError(EmberError):
    """No node can ever run the task as asked (e.g. a hard node affinity to
    a dead node)."""


class ActorDiedError(EmberError):
    """The actor is dead; the message says why."""


class ActorUnavailableError(EmberError):
    """The actor is temporarily unreachable (restarting)."""


class ObjectLostError(EmberError):
    """Every copy of an object was lost and it cannot be rebuilt."""


class OwnerDiedError(ObjectLostError):
    """The owner of an object died, so the object cannot be found."""


class GetTimeoutError(EmberError, TimeoutError):
    """`get` or `wait` did not finish within its timeout."""


class TaskCancelledError(EmberError):
    """The task was cancelled with `ember.cancel`."""


class ObjectStoreFullError(EmberError):
    """The object does not fit in the node's object store."""


class OutOfMemoryError(EmberError):
    """The node ran out of memory for the task or object."""


class RuntimeEnvSetupError(EmberError):
    """The runtime_env a task or actor asked for could not be set up on its
    node (a package could not be fetched, pip failed, setup timed out);
    the message says what went wrong (pip's own output for pip)."""


# Ray's names, for `import ember as ray`.
RayError = EmberError
RayTaskError = TaskError
RayActorError = ActorDiedError
RaySystemError = EmberError

__all__ = [
    "EmberError",
    "RuntimeEnvSetupError",
    "TaskError",
    "WorkerCrashedError",
    "NodeDiedError",
    "ActorDiedError",
    "ActorUnavailableError",
    "ObjectLostError",
    "OwnerDiedError",
    "GetTimeoutError",
    "TaskCancelledError",
    "ObjectStoreFullError",
    "OutOfMemoryError",
    "RayError",
    "RayTaskError",
    "RayActorError",
    "RaySystemError",
]
