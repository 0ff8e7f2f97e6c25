"""Database round trips on the hot paths found by bench/: submitting a job and claiming it.

Under load every statement waits for the database to be scheduled, so their number is what
the queue and submission benchmarks pay for. Counted, never timed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from xgenerator.context import Context, build_context
from xgenerator.db.tables import Job, User
from xgenerator.jobs import repository, service
from xgenerator.jobs.status import JobStatus
from xgenerator.ops.broker import queue_keys, redis_client
from xgenerator.settings import Settings


@contextmanager
def counting(context: Context) -> Iterator[dict[str, int]]:
    """Statements sent and transactions committed on the context's engine meanwhile."""
    counts = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    engine = context.db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def new_user(context: Context) -> str:
    with context.db.session() as session:
        user = User(username="alice", email="alice@example.com")
        session.add(user)
        session.flush()
        return user.id


def noop_job(user_id: str) -> Job:
    return Job(user_id=user_id, job_type="noop", queue="maintenance", config={})


def test_a_submission_is_one_transaction_and_records_the_task_it_sent(
    context: Context, settings: Settings
) -> None:
    user_id = new_user(context)
    with counting(context) as counts:
        submission = service.enqueue(context, noop_job(user_id))
    job, created = submission.job, submission.created
    assert created
    assert counts["commits"] == 1  # the job, its event and its task id together
    with context.db.session() as session:
        stored = session.get(Job, job.id)
        assert stored is not None and stored.celery_task_id == job.celery_task_id
    broker = redis_client(settings.broker_url or "")
    messages = [
        json.loads(m) for key in queue_keys("maintenance") for m in broker.lrange(key, 0, -1)
    ]
    broker.close()
    assert [m["headers"]["id"] for m in messages] == [job.celery_task_id]


def test_a_task_that_could_not_be_sent_is_not_recorded(settings: Settings) -> None:
    # The broker refuses connections: the job stays queued for the reconciler, with no task id.
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    context = build_context(broken)
    try:
        submission = service.enqueue(context, noop_job(new_user(context)))
        job, created = submission.job, submission.created
        assert created and job.celery_task_id is None
        with context.db.session() as session:
            stored = session.get(Job, job.id)
            assert stored is not None
            assert (stored.status, stored.celery_task_id) == ("queued", None)
    finally:
        context.close()


def test_claim_is_one_statement_and_returns_the_job(context: Context) -> None:
    job = noop_job(new_user(context))
    with context.db.session() as session:
        repository.create(session, job)
    with context.db.session() as session, counting(context) as counts:
        claimed = repository.claim_job(session, job.id, "w1", 60)
        assert counts["statements"] == 1  # UPDATE … RETURNING
        assert claimed is not None and (claimed.status, claimed.attempts) == ("running", 1)
        assert claimed.worker_id == "w1" and claimed.started_at is not None
        assert claimed.config == {} and claimed.job_type == "noop"
    with context.db.session() as session:
        assert repository.claim_job(session, job.id, "w2", 60) is None
        assert repository.claim(session, job.id, "w2", 60) is None
        assert [e.event for e in repository.events(session, job.id)] == ["submitted", "started"]


def test_claim_after_a_release_is_the_next_attempt(context: Context) -> None:
    job = noop_job(new_user(context))
    with context.db.session() as session:
        repository.create(session, job)
        session.flush()
    with context.db.session() as session:
        assert repository.claim(session, job.id, "w1", 60) == 1
    with context.db.session() as session:
        assert repository.transition(
            session, job.id, JobStatus.QUEUED, event="requeued", attempt=1, worker_id=None
        )
    with context.db.session() as session:
        again = repository.claim_job(session, job.id, "w2", 60)
        assert again is not None and again.attempts == 2 and again.worker_id == "w2"
