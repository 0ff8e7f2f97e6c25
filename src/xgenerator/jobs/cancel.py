"""Cancelling a job: a queued job is cancelled at once; a running one is asked to stop.

The request lives in the database (`cancel_requested`), so it survives worker restarts; the
running job reads it through its progress writes and stops within a round.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from xgenerator.db.tables import Job, utcnow
from xgenerator.errors import Conflict
from xgenerator.jobs import repository
from xgenerator.jobs.status import JobStatus


def cancel(session: Session, job: Job) -> str:
    """Returns the status the job had; 409 when it already finished."""
    previous = job.status
    if JobStatus(previous).is_final:
        raise Conflict(f"job already {previous}", {"status": previous})
    session.execute(
        update(Job).where(Job.id == job.id).values(cancel_requested=True, updated_at=utcnow())
    )
    if repository.transition(
        session,
        job.id,
        JobStatus.CANCELLED,
        event="cancelled",
        message="cancelled before it started",
        only_from=JobStatus.QUEUED,
    ):
        return JobStatus.QUEUED
    # It started meanwhile (or was running): the worker sees the flag at its next progress write.
    repository.add_event(
        session, job.id, "cancel_requested", JobStatus.RUNNING, "cancellation requested"
    )
    return JobStatus.RUNNING
