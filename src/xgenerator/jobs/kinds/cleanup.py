"""Retention: a periodic `cleanup` job deletes expired jobs, their events and their artifacts.

A finished job expires `retention_<status>_days` after it finished (succeeded 90, failed 30,
cancelled 30 by default). With it go its events, its `JobArtifact` rows and their files, and
any checkpoint left behind; a model it produced stays until its owner deletes it, and so does a
dataset it derived. Datasets that no job and no model refers to expire too, but only when
`retention_unused_dataset_days` is set. Files that no row refers to (a worker died between
writing a file and committing its row) and checkpoints of jobs no longer active are swept
too (`jobs/orphans.py`).

The cleanup is itself a job (`job_type: "cleanup"`, queue `maintenance`), owned by a reserved
system user that has no API key: it shows up in `/status`, `/metrics` and the jobs table like
any other job. Celery beat (`xgenerator beat`) or, in embedded mode, a timer in the worker
calls `schedule`, which submits one unless a cleanup is already active or ran recently.

Safe to repeat and to run twice at once: rows are deleted by id after being locked with
SKIP LOCKED (PostgreSQL; SQLite serializes writers), each run deletes only what it locked, and
files go after the commit (a missing file is fine), so a crash leaves at worst an orphan file,
never a row pointing at nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from xgenerator.context import Context
from xgenerator.db.tables import (
    Dataset,
    Job,
    JobArtifact,
    JobEvent,
    JobRound,
    Model,
    PredictionLog,
    User,
    utcnow,
)
from xgenerator.jobs import orphans, service
from xgenerator.jobs.kinds import Outcome, register
from xgenerator.jobs.queues import Queue
from xgenerator.jobs.runtime import Runtime, checkpoint_key
from xgenerator.jobs.status import ACTIVE, JobStatus
from xgenerator.ops import heartbeats
from xgenerator.settings import Settings

log = logging.getLogger(__name__)

# The owner of the service's own jobs. Real user ids are 32-hex uuids and real usernames start
# with a letter or digit, so neither can collide; it has no API key, so nobody logs in as it.
SYSTEM_USER_ID = "system"
SYSTEM_USERNAME = "_system"
QUEUE = Queue.MAINTENANCE
JOB_TYPE = "cleanup"
# Heartbeat rows of workers silent this long are deleted (a killed worker leaves its row).
HEARTBEAT_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class Retention:
    """How long finished jobs (and, optionally, unused datasets) are kept."""

    succeeded: timedelta
    failed: timedelta
    cancelled: timedelta
    unused_datasets: timedelta | None = None
    prediction_logs: timedelta = timedelta(days=90)

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        days = settings.retention_unused_dataset_days
        return cls(
            succeeded=timedelta(days=settings.retention_succeeded_days),
            failed=timedelta(days=settings.retention_failed_days),
            cancelled=timedelta(days=settings.retention_cancelled_days),
            unused_datasets=timedelta(days=days) if days is not None else None,
            prediction_logs=timedelta(days=settings.retention_prediction_log_days),
        )

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Per final status: a job that finished before this moment is expired."""
        return {
            JobStatus.SUCCEEDED.value: now - self.succeeded,
            JobStatus.FAILED.value: now - self.failed,
            JobStatus.CANCELLED.value: now - self.cancelled,
        }


@dataclass
class Report:
    """What one cleanup run deleted (only what this run deleted, not a concurrent one)."""

    jobs: int = 0
    events: int = 0
    artifacts: int = 0
    datasets: int = 0
    heartbeats: int = 0
    prediction_logs: int = 0
    # files no row refers to (older than a day), and checkpoints of jobs no longer active
    orphan_files: int = 0
    checkpoints: int = 0

    def result(self) -> dict[str, int]:
        return {f"{name}_deleted": n for name, n in asdict(self).items()}


def _expired(retention: Retention, now: datetime) -> ColumnElement[bool]:
    # updated_at is never earlier than completed_at, so the (status, updated_at) index can
    # narrow the scan while completed_at keeps the rule exact.
    return or_(
        *(
            and_(Job.status == status, Job.updated_at < cutoff, Job.completed_at < cutoff)
            for status, cutoff in retention.cutoffs(now).items()
        )
    )


def expired_job_ids(session: Session, retention: Retention, now: datetime, limit: int) -> list[str]:
    """Up to `limit` expired jobs, locked for this transaction on PostgreSQL (skipping rows
    another cleanup holds). The clock is a parameter, so tests decide what `now` is.

    On SQLite the driver runs this read outside the transaction, which begins with the first
    DELETE and waits for a concurrent cleanup to commit; deleting by id then finds fewer rows.
    """
    query = (
        select(Job.id)
        .where(_expired(retention, now))
        .order_by(Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


def _delete_job_batch(context: Context, retention: Retention, now: datetime, report: Report) -> int:
    """Delete one batch of expired jobs; returns how many were found."""
    with context.db.session() as session:
        ids = expired_job_ids(session, retention, now, context.settings.cleanup_batch_size)
        if not ids:
            return 0
        keys = _purge(session, ids, report)
    # After the commit: a file is never missing for a row that still exists.
    _delete_files(context, ids, keys)
    return len(ids)


def purge_jobs(context: Context, session: Session, ids: list[str]) -> Callable[[], None]:
    """Delete finished jobs with their events and artifacts (a user's `DELETE /jobs/{id}`).
    Returns what deletes the files: call it once `session` has committed."""
    keys = _purge(session, ids, Report())
    return lambda: _delete_files(context, ids, keys)


def _delete_files(context: Context, ids: list[str], keys: list[str]) -> None:
    for key in keys + [checkpoint_key(job_id) for job_id in ids]:
        context.store.delete(key)


def _purge(session: Session, ids: list[str], report: Report) -> list[str]:
    """Delete the rows of these jobs; returns the artifact files no dataset still uses."""
    keys = list(session.scalars(select(JobArtifact.storage_key).where(JobArtifact.job_id.in_(ids))))
    # A derived dataset (predictions, normalized data) shares its file with the artifact
    # of the job that made it: the dataset outlives the job, so its file stays.
    kept = set(session.scalars(select(Dataset.storage_key).where(Dataset.storage_key.in_(keys))))
    keys = [k for k in keys if k not in kept]
    report.events += _rowcount(session.execute(delete(JobEvent).where(JobEvent.job_id.in_(ids))))
    session.execute(delete(JobRound).where(JobRound.job_id.in_(ids)))
    report.artifacts += _rowcount(
        session.execute(delete(JobArtifact).where(JobArtifact.job_id.in_(ids)))
    )
    deleted = _rowcount(session.execute(delete(Job).where(Job.id.in_(ids))))
    report.jobs += deleted
    return keys


def _expire_unused_datasets(context: Context, cutoff: datetime, report: Report) -> None:
    """Datasets created before `cutoff` that no job and no model refers to: not a job's
    input, not the output of a job still kept (whose artifact may share its file), not the
    data a model was trained on."""
    unused = and_(
        Dataset.created_at < cutoff,
        ~exists().where(Job.dataset_id == Dataset.id),
        ~exists().where(Job.id == Dataset.source_job_id),
        ~exists().where(JobArtifact.storage_key == Dataset.storage_key),
        ~exists().where(Model.dataset_id == Dataset.id),
    )
    batch = context.settings.cleanup_batch_size
    while True:
        with context.db.session() as session:
            query = select(Dataset.id, Dataset.storage_key).where(unused)
            rows = list(
                session.execute(
                    query.order_by(Dataset.id).limit(batch).with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return
            ids = [row.id for row in rows]
            # The condition again, in the DELETE itself: a job submitted meanwhile saves it.
            result = session.execute(delete(Dataset).where(Dataset.id.in_(ids), unused))
            report.datasets += _rowcount(result)
            still = set(session.scalars(select(Dataset.id).where(Dataset.id.in_(ids))))
        for row in rows:
            if row.id not in still:
                context.store.delete(row.storage_key)
        if len(rows) < batch:
            return


def run_cleanup(
    context: Context, now: datetime, on_batch: Callable[[Report], None] | None = None
) -> Report:
    """Delete everything expired at `now`; `on_batch` is called after each batch."""
    retention = Retention.from_settings(context.settings)
    report = Report()
    while True:
        found = _delete_job_batch(context, retention, now, report)
        if on_batch is not None:
            on_batch(report)
        if found < context.settings.cleanup_batch_size:
            break
    if retention.unused_datasets is not None:
        _expire_unused_datasets(context, now - retention.unused_datasets, report)
    _expire_prediction_logs(context, now - retention.prediction_logs, report)
    with context.db.session() as session:
        report.heartbeats = heartbeats.prune(session, now - HEARTBEAT_KEEP)
    swept = orphans.sweep(context, now)
    report.orphan_files, report.checkpoints = swept.files, swept.checkpoints
    return report


def _expire_prediction_logs(context: Context, before: datetime, report: Report) -> None:
    """Logged predictions older than `before`, in batches (one short transaction each)."""
    batch = context.settings.cleanup_batch_size
    while True:
        with context.db.session() as session:
            old = select(PredictionLog.id).where(PredictionLog.created_at < before).limit(batch)
            deleted = _rowcount(
                session.execute(delete(PredictionLog).where(PredictionLog.id.in_(old)))
            )
        report.prediction_logs += deleted
        if deleted < batch:
            return


class CleanupKind:
    job_type = JOB_TYPE

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        return Job(user_id=user_id, job_type=JOB_TYPE, queue=QUEUE, config={})

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome:
        def progress(report: Report) -> None:
            # Keeps the lease and notices a cancel between batches.
            runtime.progress(message=f"{report.jobs} jobs deleted so far", force=True)

        report = run_cleanup(context, utcnow(), progress)
        log.info("cleanup %s: %s", job.id, report.result())
        return Outcome(result=report.result())


def system_user_id(context: Context) -> str:
    """The reserved owner of the service's jobs, created on first use."""
    with context.db.session() as session:
        if session.get(User, SYSTEM_USER_ID) is not None:
            return SYSTEM_USER_ID
    try:
        with context.db.session() as session:
            session.add(
                User(id=SYSTEM_USER_ID, username=SYSTEM_USERNAME, email="system@xgenerator.invalid")
            )
    except IntegrityError:  # created concurrently by another scheduler
        pass
    return SYSTEM_USER_ID


def schedule(context: Context, now: datetime | None = None) -> Job | None:
    """Submit a cleanup job, unless one is active or was submitted within half an interval
    (so a restarted timer, or a second beat, does not pile them up). Returns the new job."""
    now = now or utcnow()
    owner = system_user_id(context)
    recent = now - timedelta(seconds=context.settings.cleanup_interval_s / 2)
    with context.db.session() as session:
        busy = session.scalar(
            select(func.count()).where(
                Job.user_id == owner,
                Job.job_type == JOB_TYPE,
                or_(Job.status.in_([s.value for s in ACTIVE]), Job.created_at > recent),
            )
        )
    if busy:
        return None
    return service.submit(context, owner, JOB_TYPE, {}, enforce_quota=False).job


register(CleanupKind())
