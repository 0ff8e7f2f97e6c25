"""The reconciler: makes the broker agree with the database again.

- A running job whose lease expired lost its worker: re-queued (next attempt), or `failed`
  with `WorkerLost` after `max_attempts`, or `cancelled` if its owner asked for that.
- A job `queued` for longer than `requeue_after_s` may have lost its message (Redis flushed or
  restarted, the API died before sending): it is sent again. A duplicate is harmless, since
  only one delivery can claim the job.

Every action is a compare-and-set, so several reconcilers (one per worker) may run at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from xgenerator.context import Context
from xgenerator.db.tables import Job, utcnow
from xgenerator.jobs import repository, submit
from xgenerator.jobs.status import JobStatus

log = logging.getLogger(__name__)


@dataclass
class Report:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def reconcile(context: Context, now: datetime | None = None, *, resend_all: bool = False) -> Report:
    """One pass. `resend_all` re-sends every queued job whatever its age: right for a broker
    known to be empty, such as the private Redis that embedded mode starts afresh."""
    now = now or utcnow()
    report = Report()
    _recover_expired_leases(context, now, report)
    older_than = now if resend_all else now - timedelta(seconds=context.settings.requeue_after_s)
    _resend_stale_queued(context, now, older_than, report)
    if report.requeued or report.failed or report.resent or report.cancelled:
        log.info("reconciled: %s", report)
    return report


def _recover_expired_leases(context: Context, now: datetime, report: Report) -> None:
    max_attempts = context.settings.max_attempts
    with context.db.session() as session:
        expired = repository.expired_leases(session, now)
    for job in expired:
        with context.db.session() as session:
            if job.cancel_requested:
                if repository.transition(
                    session,
                    job.id,
                    JobStatus.CANCELLED,
                    event="cancelled",
                    message="worker lost; cancel honoured",
                    attempt=job.attempts,
                ):
                    report.cancelled.append(job.id)
                    context.metrics.finished(job.job_type, JobStatus.CANCELLED)
            elif job.attempts >= max_attempts:
                error = {
                    "error_type": "WorkerLost",
                    "message": f"the worker running this job was lost {job.attempts} "
                    f"times; giving up",
                    "details": {"attempts": job.attempts},
                }
                if repository.transition(
                    session,
                    job.id,
                    JobStatus.FAILED,
                    event="failed",
                    message="WorkerLost: attempts exhausted",
                    attempt=job.attempts,
                    error=error,
                ):
                    report.failed.append(job.id)
                    context.metrics.finished(job.job_type, JobStatus.FAILED)
            elif repository.transition(
                session,
                job.id,
                JobStatus.QUEUED,
                event="requeued",
                message=f"lease of {job.worker_id} expired; retrying",
                attempt=job.attempts,
                worker_id=None,
                lease_expires_at=None,
            ):
                report.requeued.append(job.id)
    for job_id in report.requeued:
        _send(context, job_id)


def _resend_stale_queued(
    context: Context, now: datetime, older_than: datetime, report: Report
) -> None:
    with context.db.session() as session:
        stale = repository.stale_queued(session, older_than)
    for job in stale:
        if job.cancel_requested:
            with context.db.session() as session:
                if repository.transition(
                    session,
                    job.id,
                    JobStatus.CANCELLED,
                    event="cancelled",
                    message="cancelled while queued",
                    only_from=JobStatus.QUEUED,
                ):
                    report.cancelled.append(job.id)
                    context.metrics.finished(job.job_type, JobStatus.CANCELLED)
            continue
        # Touch it first (compare-and-set on updated_at), so concurrent reconcilers send once.
        with context.db.session() as session:
            touched = repository.touch_queued(session, job.id, job.updated_at, now)
            if touched:
                repository.add_event(
                    session,
                    job.id,
                    "resent",
                    JobStatus.QUEUED,
                    "queued too long; task sent again",
                    job.attempts,
                )
        if touched:
            _send(context, job.id)
            report.resent.append(job.id)


def _send(context: Context, job_id: str) -> None:
    with context.db.session() as session:
        job = session.get(Job, job_id)
    if job is not None:
        submit.send(context, job)


def release_worker_jobs(context: Context, hostname: str) -> list[str]:
    """Put the jobs a shutting-down worker still runs back in the queue (fenced by attempt,
    so the old process can no longer write; it stops at its next progress report)."""
    with context.db.session() as session:
        running = repository.running_on(session, f"{hostname}:")
    released = []
    for job in running:
        with context.db.session() as session:
            if repository.transition(
                session,
                job.id,
                JobStatus.QUEUED,
                event="requeued",
                message=f"{hostname} shut down before the job finished",
                attempt=job.attempts,
                worker_id=None,
                lease_expires_at=None,
            ):
                released.append(job.id)
    for job_id in released:
        _send(context, job_id)
    return released
