"""The one entry for what a user does to jobs: submit, cancel, delete.

Submitting records the job, commits, then sends its id to the broker. The row is committed
before the task is sent, so a worker never receives an id it cannot read. If sending fails
(broker down, process killed in between) the job stays `queued` and the reconciler sends it
again later.

Cancelling a queued job cancels it at once; a running one is asked to stop: the request lives
in the database (`cancel_requested`), so it survives worker restarts, and the running job reads
it through its progress writes and stops within a round.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from xgenerator.context import Context
from xgenerator.db.tables import Job, utcnow
from xgenerator.errors import Conflict
from xgenerator.jobs import finished, kinds, publish, quota, repository
from xgenerator.jobs.status import JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool  # False: an Idempotency-Key replayed the job created the first time
    # what happened, for the 202 answer (a search starts running at once, its trials queue)
    message: str = "job queued"


@dataclass(frozen=True)
class Cancellation:
    job_id: str
    previous_status: JobStatus
    status: JobStatus  # cancelled at once (it was queued), or still running until it stops


def submit(
    context: Context,
    user_id: str,
    job_type: str,
    request: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    enforce_quota: bool = True,
) -> Submission:
    """Check the request with its kind, then record and enqueue the job.

    With an idempotency key, the same key and request return the job created the first time;
    the same key with another request is a 409. A new job beyond the user's active-job quota
    is a 429 (`enforce_quota=False` for the service's own jobs).
    """
    kind = kinds.get(job_type)
    with context.db.session() as session:
        job = kind.prepare(session, context.settings, user_id, request)
    return enqueue(
        context,
        job,
        idempotency_key=idempotency_key,
        request=request,
        enforce_quota=enforce_quota,
    )


def enqueue(
    context: Context,
    job: Job,
    *,
    idempotency_key: str | None = None,
    request: dict[str, Any] | None = None,
    enforce_quota: bool = True,
) -> Submission:
    """Record a prepared job and send its task (`submit` without the kind's checks)."""
    user_id = job.user_id
    digest = request_hash(request or {}) if idempotency_key else None
    if idempotency_key:
        job.idempotency_key = idempotency_key
        job.request_hash = digest
        existing = replay(context, user_id, idempotency_key, digest)
        if existing is not None:
            return Submission(existing, created=False)
    # The task id is chosen now and stored with the row: one transaction per submission
    # instead of a second one after the send (bench/: POST /train took four, now three).
    task_id = job.celery_task_id = publish.new_task_id()
    try:
        with context.db.session() as session:
            repository.create(session, job)
            if enforce_quota:
                quota.check_active_jobs(
                    session, job.user_id, context.settings.max_active_jobs_per_user
                )
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        existing = replay(context, user_id, idempotency_key or "", digest)
        if existing is None:
            raise
        return Submission(existing, created=False)
    context.metrics.submitted(job.job_type)
    if not publish.publish(context, job, task_id):
        publish.forget_task_id(context, job)
    return Submission(job, created=True)


def cancel(context: Context, job: Job, *, cascade: bool = True) -> Cancellation:
    """Cancel the user's job (already owned: see `api/deps.py`); 409 when it already ended.
    A search (`tune`) is cancelled with all its active trials."""
    previous = JobStatus(job.status)
    if previous.is_final:
        raise Conflict(f"job already {previous}", {"status": previous.value})
    if cascade and job.job_type == "tune":
        from xgenerator.jobs import search

        search.cancel(context, job)
        return Cancellation(job.id, previous, JobStatus.CANCELLED)
    with context.db.session() as session:
        session.execute(
            update(Job).where(Job.id == job.id).values(cancel_requested=True, updated_at=utcnow())
        )
        cancelled = repository.transition(
            session,
            job.id,
            JobStatus.CANCELLED,
            event="cancelled",
            message="cancelled before it started",
            only_from=JobStatus.QUEUED,
        )
        if not cancelled:
            # It started meanwhile (or was running): the worker sees the flag at its next
            # progress write.
            repository.add_event(
                session, job.id, "cancel_requested", JobStatus.RUNNING, "cancellation requested"
            )
    if cancelled:
        finished.record(context, job.job_type, JobStatus.CANCELLED)
        if job.parent_job_id is not None and cascade:
            from xgenerator.jobs import search

            search.on_trial_finished(context, job.parent_job_id)
        return Cancellation(job.id, JobStatus.QUEUED, JobStatus.CANCELLED)
    return Cancellation(job.id, JobStatus.RUNNING, JobStatus.RUNNING)


def delete(context: Context, job: Job) -> Cancellation | None:
    """An active job is cancelled (returned); a finished one loses its record, events and
    result files (a model or dataset it made stays); a finished search, with its ended
    trials' (a trial still stopping after a cancel keeps its record)."""
    from xgenerator.jobs.kinds import cleanup

    if not JobStatus(job.status).is_final:
        return cancel(context, job)
    with context.db.session() as session:
        ids = [job.id]
        if job.job_type == "tune":
            from xgenerator.jobs import search

            ids += [t.id for t in search.trials(session, job.id) if JobStatus(t.status).is_final]
        delete_files = cleanup.purge_jobs(context, session, ids)
    delete_files()
    return None


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(context: Context, user_id: str, key: str, digest: str | None) -> Job | None:
    with context.db.session() as session:
        existing = repository.find_by_idempotency_key(session, user_id, key)
    if existing is not None and existing.request_hash != digest:
        raise Conflict(
            "Idempotency-Key was already used with a different request", {"job_id": existing.id}
        )
    return existing
