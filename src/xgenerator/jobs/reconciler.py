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
from typing import Any

from xgenerator.context import Context
from xgenerator.db.tables import Job, utcnow
from xgenerator.jobs import finished, publish, repository, state
from xgenerator.jobs.status import JobStatus

log = logging.getLogger(__name__)


# Rows a pass reads and acts on at most, per kind of repair; the rest wait for the next pass.
BATCH = 100


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
    _recover_expired_leases(context, report)
    older_than = now if resend_all else now - timedelta(seconds=context.settings.requeue_after_s)
    _resend_stale_queued(context, now, older_than, report)
    if report.requeued or report.failed or report.resent or report.cancelled:
        log.info("reconciled: %s", report)
    return report


def _recover_expired_leases(context: Context, report: Report) -> None:
    with context.db.session() as session:
        expired = repository.expired_leases(session, BATCH)
    recover_expired(context, expired, report)


def recover_expired(context: Context, expired: list[Job], report: Report) -> None:
    """Act on jobs seen with an expired lease. Each move re-checks, in its UPDATE, that the
    lease is still expired by the database's clock: one renewed meanwhile stays running."""
    for job in expired:
        _recover(context, job, report, f"the lease of {job.worker_id} expired", lease_expired=True)


def _recover(
    context: Context, job: Job, report: Report, reason: str, *, lease_expired: bool
) -> None:
    """A running job lost its worker: `cancelled` if its owner asked, `failed` (WorkerLost)
    once its attempts are spent, else back to the queue for the next attempt. Fenced by
    the attempt it was seen at."""
    attempts = job.attempts
    fence = {"attempt": attempts, "lease_expired": lease_expired}
    if job.cancel_requested:
        _move(
            context,
            job,
            JobStatus.CANCELLED,
            report.cancelled,
            event="cancelled",
            message=f"{reason}; cancel honoured",
            **fence,
        )
    elif attempts >= context.settings.max_attempts:
        error = state.job_error(
            "WorkerLost",
            f"the worker running this job was lost {attempts} times; giving up",
            {"attempts": attempts},
        )
        _move(
            context,
            job,
            JobStatus.FAILED,
            report.failed,
            event="failed",
            message=f"WorkerLost: {reason}; attempts exhausted",
            error=error.as_json(),
            **fence,
        )
    elif _move(
        context,
        job,
        JobStatus.QUEUED,
        report.requeued,
        event="requeued",
        message=f"{reason}; retrying",
        worker_id=None,
        lease_expires_at=None,
        **fence,
    ):
        _send(context, job.id)


def _resend_stale_queued(
    context: Context, now: datetime, older_than: datetime, report: Report
) -> None:
    with context.db.session() as session:
        stale = repository.stale_queued(session, older_than)
    for job in stale:
        if job.cancel_requested:
            _move(
                context,
                job,
                JobStatus.CANCELLED,
                report.cancelled,
                event="cancelled",
                message="cancelled while queued",
                only_from=JobStatus.QUEUED,
            )
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


def _move(
    context: Context, job: Job, target: JobStatus, moved: list[str], **transition: Any
) -> bool:
    """One compare-and-set transition in its own transaction; a job that ended is counted in
    the metrics only once that transaction committed."""
    with context.db.session() as session:
        changed = repository.transition(session, job.id, target, **transition)
    if changed:
        moved.append(job.id)
        if target.is_final:
            finished.record(context, job.job_type, target)
    return changed


def _send(context: Context, job_id: str) -> None:
    with context.db.session() as session:
        job = session.get(Job, job_id)
    if job is not None:
        publish.send(context, job)


def release_worker_jobs(context: Context, worker_prefix: str) -> Report:
    """Hand back the jobs a shutting-down worker process still runs: those whose worker id
    starts with `worker_prefix`, unique to that process. Like a lost worker's: re-queued
    (fenced by attempt, so the old process can no longer write; it stops at its next
    progress report), or failed once the attempts are spent, or cancelled if asked."""
    with context.db.session() as session:
        running = repository.running_on(session, worker_prefix)
    report = Report()
    for job in running:
        _recover(context, job, report, f"{job.worker_id} shut down", lease_expired=False)
    return report
