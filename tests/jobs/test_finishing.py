"""How an attempt records its outcome when the database misbehaves at the worst moment.

The runner runs in this process (the same code a worker runs) against the real database
and Redis, so a fault can be placed exactly: after a COMMIT, before its answer arrives."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.support import classification_frame, create_user, upload
from tests.support.jobs import in_process, submit
from tests.support.rows import new_job
from xgenerator.context import Context
from xgenerator.db.tables import Job, JobEvent, Model
from xgenerator.jobs import repository, runner
from xgenerator.jobs.runtime import Runtime, checkpoint_key
from xgenerator.jobs.status import JobStatus


def lose_the_answer_to_the_first_model_commit(context: Context) -> dict[str, int]:
    """The first transaction that inserts a model commits, then raises as a dropped
    connection would: the work is in the database, the worker is not told."""
    seen = {"armed": 0, "raised": 0}
    sessions = context.db._sessions  # the factory behind every `context.db.session()`

    def after_flush(session: Session, _: Any) -> None:
        if any(isinstance(obj, Model) for obj in session.new):
            seen["armed"] += 1

    def after_commit(_: Session) -> None:
        if seen["armed"] and not seen["raised"]:
            seen["raised"] += 1
            raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "after_commit", after_commit)
    return seen


def test_a_success_whose_acknowledgement_is_lost_keeps_its_model(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(200)).json()["dataset_id"]
    job_id = submit(client, user, dataset_id, 5)  # no worker: it waits, queued
    seen = lose_the_answer_to_the_first_model_commit(context)

    assert runner.run(in_process(context), job_id, "test:1") == "succeeded"

    assert seen["raised"] == 1
    with context.db.session() as session:
        job = session.get(Job, job_id)
        models = list(session.scalars(select(Model).where(Model.job_id == job_id)))
    assert job is not None and job.status is JobStatus.SUCCEEDED and job.attempts == 1
    assert [m.id for m in models] == [job.model_id]
    assert context.store.exists(models[0].storage_key)


def test_a_cancel_requested_after_the_last_phase_wins_over_the_success(
    context: Context,
) -> None:
    job = new_job(context)  # a noop job: claimed, run, then its success is committed
    seen = {"claimed": False, "cancelled": False}
    sessions = context.db._sessions

    def after_flush(session: Session, _: Any) -> None:
        if any(isinstance(o, JobEvent) and o.event == "started" for o in session.new):
            seen["claimed"] = True

    def after_commit(_: Session) -> None:
        # The owner cancels once the job is running, before it commits its success.
        if seen["claimed"] and not seen["cancelled"]:
            seen["cancelled"] = True
            with context.db.engine.begin() as conn:
                conn.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "after_commit", after_commit)

    assert runner.run(in_process(context), job.id, "test:1") == "cancelled"

    with context.db.session() as session:
        stored = session.get(Job, job.id)
        names = list(session.scalars(select(JobEvent.event).order_by(JobEvent.id)))
    assert stored is not None and stored.status is JobStatus.CANCELLED
    assert stored.result is None
    assert names == ["submitted", "started", "cancelled"]


def test_a_stale_attempt_failing_keeps_the_current_attempt_s_checkpoint(
    context: Context,
) -> None:
    job = new_job(context)
    with context.db.session() as session:
        assert repository.claim_job(session, job.id, "old:1", 60) is not None
    stale = Runtime(context, job.id, 1, "noop")
    # Its lease lapsed; the job was re-queued and claimed again, and attempt 2 checkpointed.
    with context.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(status="queued"))
        assert repository.claim_job(session, job.id, "new:1", 60) is not None
    context.store.put_bytes(checkpoint_key(job.id), b"attempt 2")

    assert runner._fail(context, stale, "InvalidInput", "bad data") == "lost"
    assert runner._cancel(context, stale) == "lost"

    assert context.store.get_bytes(checkpoint_key(job.id)) == b"attempt 2"
    with context.db.session() as session:
        current = session.get(Job, job.id)
    assert current is not None and (current.status, current.attempts) == ("running", 2)
