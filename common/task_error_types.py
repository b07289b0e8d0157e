"""Ray's `error_type` names for how a task attempt failed, as task events
and `ember list tasks` show them; one place for the raylet and the workers."""

from __future__ import annotations

from typing import Any

from ember_common.object_layout import FailureType

APPLICATION_ERROR = "TASK_EXECUTION_EXCEPTION"  # the task raised
DEPENDENCY_ERROR = "DEPENDENCY_RESOLUTION_FAILED"  # an argument was an error
ACTOR_DIED = "ACTOR_DIED"
TASK_CANCELLED = "TASK_CANCELLED"
WORKER_DIED = "WORKER_DIED"

# The runtime's failures (ember_common.object_layout.Failure).
OF_FAILURE = {
    FailureType.WORKER_CRASHED: WORKER_DIED,
    FailureType.NODE_DIED: "NODE_DIED",
    FailureType.TASK_UNSCHEDULABLE: "TASK_UNSCHEDULABLE_ERROR",
    FailureType.TASK_CANCELLED: TASK_CANCELLED,
    FailureType.ACTOR_DIED: ACTOR_DIED,
    FailureType.OBJECT_LOST: "OBJECT_UNRECONSTRUCTABLE",
    FailureType.OWNER_DIED: "OWNER_DIED",
}


def of_result(result: Any) -> str:
    """A worker's TaskResult: "" if it succeeded, else why it failed."""
    if result.application_error:
        return APPLICATION_ERROR
    if result.returns and result.returns[0].is_error:  # ended by the runtime while it ran
        return ACTOR_DIED if result.actor_exit else TASK_CANCELLED
    return ""
