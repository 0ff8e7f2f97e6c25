"""Job statuses and the only transitions allowed between them.

The same strings are used in the API, the database and the broker. Every other module asks
`can_transition` (or `ensure_transition`) instead of comparing statuses itself.
"""

from __future__ import annotations

from enum import StrEnum

from xgenerator.errors import Conflict


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # running -> queued: the worker died or shut down and the job is retried by another one
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return JobStatus(target) in TRANSITIONS[JobStatus(current)]


def ensure_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise Conflict(
            f"job is {current}; it cannot become {target}",
            {"status": current, "requested": target},
        )


def sources_of(target: JobStatus) -> list[str]:
    """Statuses a job may be in for a compare-and-set into `target` to apply."""
    return [s.value for s, targets in TRANSITIONS.items() if target in targets]
