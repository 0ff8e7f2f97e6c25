"""How an attempt records its outcome when the database misbehaves at the worst moment.

The runner runs in this process (the same code a worker runs) against the real database
and Redis, so a fault can be placed exactly: after a COMMIT, before its answer arrives."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.jobs.test_worker_behaviour import submit
from tests.support import classification_frame, create_user, upload
from xgenerator.context import Context
from xgenerator.db.tables import Job, Model
from xgenerator.jobs import runner
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

    assert runner.run(context, job_id, "test:1") == "succeeded"

    assert seen["raised"] == 1
    with context.db.session() as session:
        job = session.get(Job, job_id)
        models = list(session.scalars(select(Model).where(Model.job_id == job_id)))
    assert job is not None and job.status is JobStatus.SUCCEEDED and job.attempts == 1
    assert [m.id for m in models] == [job.model_id]
    assert context.store.exists(models[0].storage_key)
