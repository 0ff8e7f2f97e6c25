"""Leases by the database's clock: a lease renewed after the reconciler saw it expired is
not taken. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, update

from tests.support.rows import new_job
from xgenerator.context import Context
from xgenerator.db.clock import db_now
from xgenerator.db.tables import Job
from xgenerator.jobs import reconciler, repository
from xgenerator.jobs.status import JobStatus


def running_with_an_expired_lease(context: Context, n: int) -> list[str]:
    first = new_job(context)
    ids = [first.id]
    with context.db.session() as session:
        for _ in range(n - 1):
            job = Job(user_id=first.user_id, job_type="noop", queue="maintenance", config={})
            ids.append(repository.create(session, job).id)
    with context.db.session() as session:
        for job_id in ids:
            assert repository.claim_job(session, job_id, f"w-{job_id}", 60) is not None
        session.execute(update(Job).values(lease_expires_at=db_now(-5)))
    return ids


def test_a_lease_renewed_after_it_was_seen_expired_is_not_taken(context: Context) -> None:
    renewed, lapsed = running_with_an_expired_lease(context, 2)
    with context.db.session() as session:
        seen = repository.expired_leases(session, 10)
    assert sorted(j.id for j in seen) == sorted([renewed, lapsed])
    with context.db.session() as session:  # the worker's lease thread wins the race
        assert repository.heartbeat(session, renewed, 1, 60)

    report = reconciler.Report()
    reconciler.recover_expired(context, seen, report)

    assert report.requeued == [lapsed]
    with context.db.session() as session:
        rows = {j.id: j for j in session.scalars(select(Job))}
    assert rows[renewed].status is JobStatus.RUNNING and rows[renewed].attempts == 1
    assert rows[renewed].worker_id == f"w-{renewed}"
    assert rows[lapsed].status is JobStatus.QUEUED


def test_leases_are_written_and_read_by_the_database_clock(context: Context) -> None:
    [job_id] = running_with_an_expired_lease(context, 1)
    with context.db.session() as session:
        assert [j.id for j in repository.expired_leases(session, 10)] == [job_id]
        assert repository.heartbeat(session, job_id, 1, 30)
    with context.db.session() as session:
        assert repository.expired_leases(session, 10) == []
        lease, now = session.execute(
            select(Job.lease_expires_at, db_now()).where(Job.id == job_id)
        ).one()
    assert lease is not None and 29 < (lease - now).total_seconds() <= 30.5


def test_release_hands_back_only_that_process_s_jobs_and_respects_max_attempts(
    context: Context,
) -> None:
    mine, spent, other = running_with_an_expired_lease(context, 3)
    with context.db.session() as session:
        session.execute(update(Job).values(lease_expires_at=db_now(60)))
        session.execute(update(Job).where(Job.id == mine).values(worker_id="n@h:aaa:11"))
        session.execute(
            update(Job)
            .where(Job.id == spent)
            .values(worker_id="n@h:aaa:12", attempts=context.settings.max_attempts)
        )
        # the same node name and pid, another process (instance)
        session.execute(update(Job).where(Job.id == other).values(worker_id="n@h:bbb:11"))

    report = reconciler.release_worker_jobs(context, "n@h:aaa:")

    assert (report.requeued, report.failed) == ([mine], [spent])
    with context.db.session() as session:
        rows = {j.id: j for j in session.scalars(select(Job))}
    assert rows[mine].status is JobStatus.QUEUED
    assert rows[spent].status is JobStatus.FAILED
    error = rows[spent].error
    assert error is not None and error["error_type"] == "WorkerLost"
    assert rows[other].status is JobStatus.RUNNING and rows[other].worker_id == "n@h:bbb:11"
