"""Job statuses and the only transitions allowed between them.

The same strings are used in the API, the database and the broker. What guards the
transitions: every status write after a job's creation is a compare-and-set UPDATE in
`jobs/repository.py` (`transition`, and `claim_job` for queued → running) whose WHERE clause
is `status IN sources_of(target)`, so a move that `TRANSITIONS` does not allow matches no row.
"""

from __future__ import annotations

from enum import StrEnum


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


def sources_of(target: JobStatus) -> list[str]:
    """Statuses a job may be in for a compare-and-set into `target` to apply."""
    return [s.value for s, targets in TRANSITIONS.items() if target in targets]
