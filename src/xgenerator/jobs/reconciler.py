"""The reconciler: makes the broker agree with the database again.

- A running job whose lease expired lost its worker: re-queued (next attempt), or `failed`
  with `WorkerLost` after `max_attempts`, or `cancelled` if its owner asked for that.
- A job `queued` for longer than `requeue_after_s` may have lost its message (Redis flushed or
  restarted, the API died before sending): it is sent again if its task is in no queue and
  held by no worker. A job merely waiting behind a backlog is left alone: re-sending it
  would pile up duplicates and skip its retry backoff.

Each pass handles bounded batches. Every worker runs the reconciler, but one at a time does
a pass (the `reconciler` lease, `jobs/leader.py`); every action is still a compare-and-set,
so two passes overlapping at a hand-over do no harm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis

from xgenerator.context import Context
from xgenerator.db.tables import Job, utcnow
from xgenerator.jobs import finished, leader, publish, repository, state
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import checkpoint_key
from xgenerator.jobs.status import JobStatus
from xgenerator.ops import broker, heartbeats

log = logging.getLogger(__name__)


# Rows a pass reads and acts on at most, per kind of repair; the rest wait for the next pass.
BATCH = 100
# The reconciler lease lasts this many intervals: a dead holder is replaced that much later.
LEASE_INTERVALS = 3


@dataclass
class Report:
    # False when another process holds the reconciler lease and this pass did nothing.
    active: bool = True
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def reconcile(context: Context, now: datetime | None = None, *, resend_all: bool = False) -> Report:
    """One pass, if this process holds the reconciler lease. `resend_all` checks every
    queued job whatever its age, lease or not: right at the start of embedded mode, whose
    private Redis starts empty."""
    now = now or utcnow()
    ttl = LEASE_INTERVALS * context.settings.reconcile_interval_s
    if not resend_all and not leader.hold(context, "reconciler", ttl):
        return Report(active=False)
    report = Report()
    _recover_expired_leases(context, report)
    older_than = now if resend_all else now - timedelta(seconds=context.settings.requeue_after_s)
    _resend_stale_queued(context, now, older_than, report)
    _fail_gpu_jobs_without_gpu_worker(context, now, report)
    from xgenerator.jobs import search

    # a search whose scheduling a dead process left undone (see jobs/search.py)
    search.sweep(context)
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
        stale = repository.stale_queued(session, older_than, BATCH)
    for job in [j for j in stale if j.cancel_requested]:
        _move(
            context,
            job,
            JobStatus.CANCELLED,
            report.cancelled,
            event="cancelled",
            message="cancelled while queued",
            only_from=JobStatus.QUEUED,
        )
    stale = [j for j in stale if not j.cancel_requested]
    if not stale:
        return
    present = _in_broker(context, {j.queue for j in stale})
    if present is None:
        return  # the broker cannot be read now; nothing could be sent to it either
    lost = [j for j in stale if j.celery_task_id is None or j.celery_task_id not in present]
    waiting = [j.id for j in stale if j not in lost]
    if waiting:
        with context.db.session() as session:
            repository.mark_checked(session, waiting, now)
    for job in lost:
        # Touch it first (compare-and-set on updated_at), so that it is sent once.
        with context.db.session() as session:
            touched = repository.touch_queued(session, job.id, job.updated_at, now)
            if touched:
                repository.add_event(
                    session,
                    job.id,
                    "resent",
                    JobStatus.QUEUED,
                    "its task was in no queue; sent again",
                    job.attempts,
                )
        if touched:
            _send(context, job.id)
            report.resent.append(job.id)


def _fail_gpu_jobs_without_gpu_worker(context: Context, now: datetime, report: Report) -> None:
    """A `device: cuda` job waits for a GPU worker at most `gpu_wait_s`: with none alive it
    would hold its owner's quota slot forever. Ended `failed` (NoGpuWorker), saying so."""
    settings = context.settings
    with context.db.session() as session:
        # liveness by the clock the heartbeats were written with, whatever `now` a test passes
        workers = heartbeats.alive(session, utcnow(), settings.worker_heartbeat_timeout_s)
        if any(Queue.GPU in w.queues for w in workers):
            return
        waiting = repository.queued_before(
            session, Queue.GPU, now - timedelta(seconds=settings.gpu_wait_s), BATCH
        )
    for job in waiting:
        error = state.job_error(
            "NoGpuWorker",
            f"no GPU worker was running for {settings.gpu_wait_s:g} s; train with "
            '"device": "cpu", or start `xgenerator worker --queues gpu`',
        )
        _move(
            context,
            job,
            JobStatus.FAILED,
            report.failed,
            event="failed",
            message=f"NoGpuWorker: {error.message}",
            error=error.as_json(),
            only_from=JobStatus.QUEUED,
        )


def _in_broker(context: Context, queues: set[str]) -> set[str] | None:
    """Task ids the broker holds for these queues; empty without a broker to read (then
    every stale job counts as lost, as it may be), None when it cannot be read now."""
    if context.redis is None:
        return set()
    try:
        return broker.task_ids_in_broker(context.redis, sorted(queues))
    except redis.RedisError as exc:
        log.warning("cannot read the broker's queues (%s); re-sending nothing this pass", exc)
        return None


def _move(
    context: Context, job: Job, target: JobStatus, moved: list[str], **transition: Any
) -> bool:
    """One compare-and-set transition in its own transaction; a job that ended is counted in
    the metrics, and its checkpoint deleted, only once that transaction committed."""
    with context.db.session() as session:
        changed = repository.transition(session, job.id, target, **transition)
    if changed:
        moved.append(job.id)
        if target.is_final:
            finished.record(context, job.job_type, target)
            context.store.delete(checkpoint_key(job.id))
            if job.parent_job_id is not None:
                from xgenerator.jobs import search

                search.on_trial_finished(context, job.parent_job_id)
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


def release_job(context: Context, job_id: str, attempt: int, reason: str) -> Report:
    """Hand back one job whose process died under a live worker (`jobs/isolation.py`), at
    once rather than when its lease expires; only if `attempt` still runs it."""
    report = Report()
    with context.db.session() as session:
        job = session.get(Job, job_id)
    if job is not None and job.status is JobStatus.RUNNING and job.attempts == attempt:
        _recover(context, job, report, reason, lease_expired=False)
    return report
