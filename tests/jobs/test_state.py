"""Typed job state: the status column, progress and error builders, one way to publish a
task, one place that counts a finished job. On SQLite and PostgreSQL, with a real Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update

from tests.support.rows import new_job, queued_task_ids
from xgenerator.context import Context
from xgenerator.db.tables import Job, utcnow
from xgenerator.jobs import finished, reconciler, repository, runner, state
from xgenerator.jobs.runtime import Runtime
from xgenerator.jobs.status import JobStatus
from xgenerator.ops.broker import redis_client
from xgenerator.ops.prometheus import FINISHED


def test_status_reads_back_as_the_enum_and_is_stored_as_the_same_string(
    context: Context,
) -> None:
    job = new_job(context)
    with context.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.status is JobStatus.QUEUED
        raw = session.execute(text("SELECT status FROM jobs WHERE id = :id"), {"id": job.id})
        assert raw.scalar_one() == "queued"


def test_progress_derives_percent_from_rounds_and_keeps_the_public_keys() -> None:
    built = state.progress(round=3, total_rounds=8, metrics={"logloss": 0.5}, message="m")
    assert built.as_json() == {
        "percent": 37.5,
        "message": "m",
        "round": 3,
        "total_rounds": 8,
        "metrics": {"logloss": 0.5},
        "checkpoint_round": None,
    }
    assert state.progress(percent=12.3456).percent == 12.35


def test_a_retry_records_the_task_id_it_published(context: Context) -> None:
    job = new_job(context)
    with context.db.session() as session:
        claimed = repository.claim_job(session, job.id, "w1", 60)
    assert claimed is not None
    runtime = Runtime(context, job.id, claimed.attempts)
    assert runner._retry_later(context, runtime, ConnectionError("storage away")) == "retrying"
    with context.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.status is JobStatus.QUEUED
        assert stored.celery_task_id is not None
    assert queued_task_ids(context, "maintenance") == [stored.celery_task_id]


def test_a_job_failed_by_the_reconciler_has_the_typed_error_and_is_counted_once(
    context: Context,
) -> None:
    job = new_job(context)
    with context.db.session() as session:
        repository.claim_job(session, job.id, "w1", 60)
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(
                attempts=context.settings.max_attempts,
                lease_expires_at=utcnow() - timedelta(seconds=5),
            )
        )
    report = reconciler.reconcile(context)
    assert report.failed == [job.id]
    assert reconciler.reconcile(context).failed == []
    with context.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.status is JobStatus.FAILED
        assert stored.error == {
            "error_type": "WorkerLost",
            "message": f"the worker running this job was lost "
            f"{context.settings.max_attempts} times; giving up",
            "details": {"attempts": context.settings.max_attempts},
        }
    broker = redis_client(context.settings.broker_url or "")
    assert broker.hget(FINISHED, "noop|failed") == b"1"
    broker.close()


def test_only_a_final_status_is_counted(context: Context) -> None:
    with pytest.raises(ValueError, match="not a final status"):
        finished.record(context, "noop", JobStatus.RUNNING)
