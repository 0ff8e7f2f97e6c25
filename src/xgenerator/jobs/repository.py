"""Every read and write of job rows and job events.

Status changes are compare-and-set UPDATEs guarded by the transitions in `status.py`, and
writes made on behalf of a worker are fenced by the attempt number: a worker whose job was
taken over (its lease expired and another attempt started) changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, load_only

from xgenerator.db.clock import db_now
from xgenerator.db.tables import Job, JobArtifact, JobEvent, utcnow
from xgenerator.errors import NotFound
from xgenerator.jobs.status import JobStatus, sources_of


def _changed(result: Any) -> bool:
    """Whether an UPDATE matched exactly one row: the compare-and-set succeeded."""
    assert isinstance(result, CursorResult)  # noqa: S101 - UPDATEs return cursor results
    return result.rowcount == 1


def add_event(
    session: Session, job_id: str, event: str, status: str, message: str = "", attempt: int = 0
) -> None:
    session.add(
        JobEvent(job_id=job_id, event=event, status=status, message=message, attempt=attempt)
    )


def create(session: Session, job: Job) -> Job:
    job.status = JobStatus.QUEUED
    session.add(job)
    session.flush()
    # The broker's task id is no part of the job's public schema; its events keep it for
    # anyone tracing a delivery.
    task = f" as task {job.celery_task_id}" if job.celery_task_id else ""
    add_event(session, job.id, "submitted", JobStatus.QUEUED, f"{job.job_type} job submitted{task}")
    return job


def get_owned(session: Session, user_id: str, job_id: str) -> Job:
    """The user's job; another user's job is reported exactly like a missing one."""
    job = session.get(Job, job_id)
    if job is None or job.user_id != user_id:
        raise NotFound("job", job_id)
    return job


def find_by_idempotency_key(session: Session, user_id: str, key: str) -> Job | None:
    query = select(Job).where(Job.user_id == user_id, Job.idempotency_key == key)
    return session.scalar(query)


# A count reads one index entry per job, so an exact total made GET /jobs grow with the
# user's jobs (bench/: 12 ms with 1k jobs, 191 ms with 1M on PostgreSQL). Past this many the
# listing stops counting and says so; the page itself never depended on the number.
COUNT_LIMIT = 10_000


def list_owned(
    session: Session,
    user_id: str,
    *,
    status: str | None = None,
    job_type: str | None = None,
    model_name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int, bool]:
    """Newest first, served by the (user_id, [status,] created_at) indexes; with the number
    of matching jobs, counted up to COUNT_LIMIT, and whether that count is the whole."""
    query = select(Job).where(Job.user_id == user_id)
    if status is not None:
        query = query.where(Job.status == status)
    if job_type is not None:
        query = query.where(Job.job_type == job_type)
    if model_name is not None:
        query = query.where(Job.model_name == model_name)
    # In index order, so that counting walks the (user_id, [status,] created_at) index; left
    # unordered, PostgreSQL may scan the table hoping to meet the limit early, and a small
    # user's jobs (or a big user's, stored together) are then far between.
    matching = (
        query.with_only_columns(Job.created_at)
        .order_by(Job.created_at)
        .limit(COUNT_LIMIT + 1)
        .subquery()
    )
    counted = session.scalar(select(func.count()).select_from(matching)) or 0
    page = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page)), min(counted, COUNT_LIMIT), counted <= COUNT_LIMIT


def events(session: Session, job_id: str, after_id: int = 0) -> list[JobEvent]:
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after_id)
    return list(session.scalars(query.order_by(JobEvent.id)))


def artifacts(session: Session, job_id: str) -> list[JobArtifact]:
    query = select(JobArtifact).where(JobArtifact.job_id == job_id)
    return list(session.scalars(query.order_by(JobArtifact.name)))


def artifact(session: Session, job_id: str, name: str) -> JobArtifact:
    query = select(JobArtifact).where(JobArtifact.job_id == job_id, JobArtifact.name == name)
    row = session.scalar(query)
    if row is None:
        raise NotFound("artifact", name)
    return row


def transition(
    session: Session,
    job_id: str,
    target: JobStatus,
    *,
    event: str,
    message: str = "",
    attempt: int | None = None,
    only_from: JobStatus | None = None,
    lease_expired: bool = False,
    unless_cancel_requested: bool = False,
    **fields: Any,
) -> bool:
    """Move the job to `target` if its current status allows it (and, for a worker, if
    `attempt` is still the current one; with `only_from`, if it is in exactly that status;
    with `lease_expired`, if its lease is expired now, by the database's clock, so that a
    lease renewed since it was seen expired is not taken; with `unless_cancel_requested`, if
    its owner has not asked to cancel). Returns whether the row changed; writes an event."""
    now = utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now, **fields}
    if target.is_final:
        values.setdefault("completed_at", now)
        values.setdefault("lease_expires_at", None)
    query = update(Job).where(Job.id == job_id, Job.status.in_(sources_of(target)))
    if attempt is not None:
        query = query.where(Job.attempts == attempt)
    if only_from is not None:
        query = query.where(Job.status == only_from)
    if lease_expired:
        query = query.where(Job.lease_expires_at < db_now())
    if unless_cancel_requested:
        query = query.where(Job.cancel_requested.is_(False))
    changed = _changed(session.execute(query.values(**values)))
    if changed:
        add_event(session, job_id, event, target, message, attempt or 0)
    return changed


def claim(session: Session, job_id: str, worker_id: str, lease_s: float) -> int | None:
    """queued → running in one compare-and-set; the new attempt number, or None if the job
    was not claimable (already running elsewhere, finished, cancelled or gone)."""
    job = claim_job(session, job_id, worker_id, lease_s)
    return None if job is None else job.attempts


def claim_job(session: Session, job_id: str, worker_id: str, lease_s: float) -> Job | None:
    """`claim`, returning the claimed row (its `attempts` is the new attempt number).

    One statement: UPDATE … RETURNING gives the attempt and the row the worker needs, where
    an UPDATE, a SELECT of the attempt and a SELECT of the row took three round trips."""
    now = utcnow()
    query = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_(sources_of(JobStatus.RUNNING)),
            Job.cancel_requested.is_(False),
        )
        .values(
            status=JobStatus.RUNNING.value,
            attempts=Job.attempts + 1,
            worker_id=worker_id,
            lease_expires_at=db_now(lease_s),
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
        )
        .returning(Job)
    )
    options = {"populate_existing": True, "synchronize_session": False}
    job = session.scalars(query, execution_options=options).one_or_none()
    if job is None:
        return None
    add_event(
        session,
        job_id,
        "started",
        JobStatus.RUNNING,
        f"attempt {job.attempts} on {worker_id}",
        job.attempts,
    )
    return job


def heartbeat(session: Session, job_id: str, attempt: int, lease_s: float, **fields: Any) -> bool:
    """Extend the lease by the database's clock (and write progress); False once this
    attempt no longer owns the job."""
    return renew(session, job_id, attempt, lease_s, **fields) is not None


def renew(
    session: Session, job_id: str, attempt: int, lease_s: float, **fields: Any
) -> bool | None:
    """`heartbeat` that also reads the cancel flag, in the same statement (UPDATE …
    RETURNING): None once this attempt no longer owns the job, else whether its owner asked
    to cancel. One statement instead of two also shortens the time the row stays locked."""
    query = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempt)
        .values(lease_expires_at=db_now(lease_s), updated_at=utcnow(), **fields)
        .returning(Job.cancel_requested)
    )
    row = session.execute(query).first()
    return None if row is None else bool(row[0])


def expired_leases(session: Session, limit: int) -> list[Job]:
    """Running jobs whose lease is expired by the database's clock, oldest lease first."""
    query = select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < db_now())
    return list(session.scalars(query.order_by(Job.lease_expires_at).limit(limit)))


def queued_before(session: Session, queue: str, created_before: datetime, limit: int) -> list[Job]:
    """Jobs of `queue` still queued that were submitted before `created_before`, oldest first."""
    query = (
        select(Job)
        .options(load_only(Job.id, Job.job_type, Job.queue, Job.created_at, Job.parent_job_id))
        .where(
            Job.status == JobStatus.QUEUED,
            Job.queue == queue,
            Job.created_at < created_before,
        )
        .order_by(Job.created_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def stale_queued(session: Session, older_than: datetime, limit: int) -> list[Job]:
    """Jobs queued and untouched since `older_than`, least recently touched first; only the
    columns the reconciler needs (not the config, progress or history)."""
    query = (
        select(Job)
        .options(
            load_only(
                Job.id,
                Job.job_type,
                Job.queue,
                Job.attempts,
                Job.updated_at,
                Job.cancel_requested,
                Job.celery_task_id,
                Job.parent_job_id,
            )
        )
        .where(Job.status == JobStatus.QUEUED, Job.updated_at <= older_than)
    )
    return list(session.scalars(query.order_by(Job.updated_at, Job.id).limit(limit)))


def mark_checked(session: Session, job_ids: list[str], now: datetime) -> None:
    """Queued jobs whose message was found in the broker: their clock restarts, so that the
    next bounded batch checks the jobs behind them."""
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED)
        .values(updated_at=now)
    )


def touch_queued(session: Session, job_id: str, seen: datetime, now: datetime) -> bool:
    """Compare-and-set on `updated_at`, so that of several reconcilers only one re-sends."""
    query = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.updated_at == seen)
        .values(updated_at=now)
    )
    return _changed(session.execute(query))


def running_on(session: Session, worker_prefix: str) -> list[Job]:
    """Running jobs whose worker id starts with `worker_prefix` (one worker process's)."""
    query = select(Job).where(
        Job.status == JobStatus.RUNNING, Job.worker_id.startswith(worker_prefix, autoescape=True)
    )
    return list(session.scalars(query))
