"""Counts over the jobs table for `/status` and `/metrics` (read-only, cluster-wide)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xgenerator.db.tables import Job
from xgenerator.jobs.status import ACTIVE, JobStatus


def counts(
    session: Session, statuses: Iterable[JobStatus] | None = None
) -> dict[tuple[str, str], int]:
    """Jobs per (job_type, status); restricted to `statuses` when given, which the
    (status, updated_at) index serves without reading the finished jobs."""
    query = select(Job.job_type, Job.status, func.count()).group_by(Job.job_type, Job.status)
    if statuses is not None:
        query = query.where(Job.status.in_([s.value for s in statuses]))
    return {(job_type, status): int(n) for job_type, status, n in session.execute(query)}


def active_counts(session: Session) -> dict[tuple[str, str], int]:
    return counts(session, ACTIVE)


def by_status(rows: dict[tuple[str, str], int]) -> dict[str, int]:
    """Fold per-type counts into one count per status, every status present."""
    totals = {status.value: 0 for status in JobStatus}
    for (_, status), n in rows.items():
        totals[status] = totals.get(status, 0) + n
    return totals


def oldest_queued(session: Session) -> dict[str, datetime]:
    """The submission time of the oldest queued job of each queue."""
    query = (
        select(Job.queue, func.min(Job.created_at))
        .where(Job.status == JobStatus.QUEUED)
        .group_by(Job.queue)
    )
    # func.min keeps the column's type, so the values come back as aware UTC datetimes.
    return {queue: at for queue, at in session.execute(query)}


def queued_by_queue(session: Session) -> dict[str, int]:
    query = (
        select(Job.queue, func.count()).where(Job.status == JobStatus.QUEUED).group_by(Job.queue)
    )
    return {queue: int(n) for queue, n in session.execute(query)}
