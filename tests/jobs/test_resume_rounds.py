"""A job's rounds are rows appended as they come, and a job resumed from its checkpoint is the
job that never stopped: the same model, the same early stopping, each round stored once.

The runner runs in this process (the code a worker runs) on the real database: a worker's
death is a BaseException raised right after a checkpoint is written, which no `except
Exception` in the job's path catches; its lease then expires and the reconciler requeues it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from tests.support import auth, classification_frame, create_user, upload
from tests.support.rows import new_job
from xgenerator.context import Context, build_context
from xgenerator.db.clock import db_now
from xgenerator.db.tables import Job, JobEvent, Model
from xgenerator.jobs import reconciler, repository, rounds, runner
from xgenerator.jobs.runtime import LeaseLost, Runtime
from xgenerator.jobs.stream import Follower
from xgenerator.ml.features import to_model_frame
from xgenerator.models.repository import load_bundle
from xgenerator.settings import Settings


class WorkerDied(BaseException):
    """The process went away: nothing in the job's path records anything."""


@pytest.fixture
def every_round(settings: Settings) -> Iterator[Context]:
    """A context that checkpoints after every round and writes progress at every round, and
    runs jobs in this process (the test kills one from here)."""
    ctx = build_context(settings.model_copy(update={"checkpoint_every": 1, "isolate_jobs": False}))
    yield ctx
    ctx.close()


def _submit(client: TestClient, user: dict[str, str], dataset_id: str) -> str:
    response = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "m",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 80,
            "early_stopping_rounds": 4,
            "xgb_params": {
                "nthread": 1,
                "eta": 0.8,
                "max_depth": 4,
                "subsample": 0.7,
                "colsample_bytree": 0.6,
            },
        },
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def _die_after_checkpoint(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    real = Runtime.save_checkpoint

    def save_then_die(self: Runtime, data: bytes, round: int) -> None:
        real(self, data, round)
        if round == at:
            monkeypatch.setattr(Runtime, "save_checkpoint", real)
            raise WorkerDied

    monkeypatch.setattr(Runtime, "save_checkpoint", save_then_die)


def _requeue(context: Context, job_id: str) -> None:
    """The lease lapses and the reconciler puts the job back in its queue."""
    with context.db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=db_now(-1)))
    with context.db.session() as session:
        expired = [j for j in repository.expired_leases(session, 100) if j.id == job_id]
    reconciler.recover_expired(context, expired, reconciler.Report())


def test_a_job_resumed_mid_training_is_the_job_that_never_stopped(
    client: TestClient, every_round: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = every_round
    user = create_user(client)
    frame = classification_frame(600)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    straight = _submit(client, user, dataset_id)
    assert runner.run(context, straight, "test:1") == "succeeded"
    with context.db.session() as session:
        job_a = session.get(Job, straight)
        assert job_a is not None and job_a.result is not None
        best = job_a.result["best_iteration"]
        history_a = rounds.read(session, straight)
    assert best is not None and len(history_a) == best + 1 + 4 < 80  # it stopped early
    die_at = best + 3  # between the best round and the stop: early stopping state matters

    resumed = _submit(client, user, dataset_id)
    _die_after_checkpoint(monkeypatch, die_at)
    with pytest.raises(WorkerDied):
        runner.run(context, resumed, "test:2")
    _requeue(context, resumed)
    assert runner.run(context, resumed, "test:3") == "succeeded"

    with context.db.session() as session:
        job_b = session.get(Job, resumed)
        assert job_b is not None and job_b.attempts == 2 and job_b.result is not None
        events = list(
            session.scalars(
                select(JobEvent.message).where(
                    JobEvent.job_id == resumed, JobEvent.event == "resumed"
                )
            )
        )
        history_b = rounds.read(session, resumed)
        model_a = session.scalar(select(Model).where(Model.job_id == straight))
        model_b = session.scalar(select(Model).where(Model.job_id == resumed))
    assert events == [f"resumed from the checkpoint at round {die_at}"]
    assert job_b.result["best_iteration"] == best
    # every round once, with the values of the run that never stopped
    assert history_b == history_a
    assert model_a is not None and model_b is not None
    assert model_b.history == model_a.history == history_a
    assert model_b.num_boost_round == model_a.num_boost_round == best + 1
    a, b = load_bundle(context, model_a), load_bundle(context, model_b)
    rows = to_model_frame(frame.drop(columns=["label"]), a.features)
    np.testing.assert_allclose(
        b.booster.inplace_predict(rows), a.booster.inplace_predict(rows), rtol=1e-6
    )


@contextmanager
def _statements(context: Context) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []
    engine = context.db.engine

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _point(r: int) -> dict[str, float]:
    return {"train-logloss": 1 / r, "validation-logloss": 1.5 / r}


def test_progress_writes_append_the_new_rounds_only(context: Context) -> None:
    """The bytes sent per progress write do not grow with the rounds before it."""
    job = new_job(context, "train", "train")
    with context.db.session() as session:
        attempt = repository.claim(session, job.id, "w", 60)
    assert attempt == 1
    runtime = Runtime(context, job.id, attempt, "train")
    sent: dict[int, int] = {}
    for r in range(1, 201):
        with _statements(context) as seen:
            runtime.progress(round=r, total=200, metrics=_point(r), force=True)
        sent[r] = sum(len(repr(p)) for _, p in seen)
        inserted = [p for s, p in seen if s.lstrip().upper().startswith("INSERT INTO JOB_ROUNDS")]
        assert len(inserted) == 1 and "history" not in " ".join(s for s, _ in seen).lower()
    assert sent[200] <= sent[10] * 1.2
    with context.db.session() as session:
        stored = rounds.read(session, job.id)
    assert stored == [{"round": r, **_point(r)} for r in range(1, 201)]


def test_a_resumed_attempt_replaces_the_rounds_after_its_checkpoint(context: Context) -> None:
    job = new_job(context, "train", "train")
    with context.db.session() as session:
        first = repository.claim(session, job.id, "w", 60)
    assert first == 1
    old = Runtime(context, job.id, 1, "train")
    for r in range(1, 8):  # checkpointed at 4, then rounds 5-7 written before it died
        old.progress(round=r, total=10, metrics={"validation-logloss": 9.0}, force=True)
    with context.db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(status="queued"))
        second = repository.claim(session, job.id, "w2", 60)
    assert second == 2
    new = Runtime(context, job.id, 2, "train")
    earlier = new.resume_history(4, early_stopping=True)
    assert [e["round"] for e in earlier] == [1, 2, 3, 4]
    new.progress(round=5, total=10, metrics={"validation-logloss": 1.0}, force=True)
    with context.db.session() as session:
        stored = rounds.read(session, job.id)
    # round 5 is this attempt's; 6 and 7 (the dead attempt's, past where this one is) are gone
    assert [(e["round"], e["validation-logloss"]) for e in stored] == [
        (1, 9.0),
        (2, 9.0),
        (3, 9.0),
        (4, 9.0),
        (5, 1.0),
    ]
    # the old attempt, still running somewhere, writes nothing more
    with pytest.raises(LeaseLost):
        old.progress(round=8, total=10, metrics={"validation-logloss": 7.0}, force=True)
    with context.db.session() as session:
        assert [e["round"] for e in rounds.read(session, job.id)] == [1, 2, 3, 4, 5]


def test_a_stream_poll_reads_only_the_rounds_after_its_cursor(context: Context) -> None:
    job = new_job(context, "train", "train")
    with context.db.session() as session:
        attempt = repository.claim(session, job.id, "w", 60)
    assert attempt is not None
    runtime = Runtime(context, job.id, attempt, "train")
    for r in range(1, 301):
        runtime.progress(round=r, total=400, metrics=_point(r), force=r % 50 == 0)
    follower = Follower(job.id)
    with context.db.session() as session:
        first = follower.poll(session)
    assert [m.data["round"] for m in first if m.event == "progress"] == list(range(1, 301))
    runtime.progress(round=301, total=400, metrics=_point(301), force=True)
    with _statements(context) as seen, context.db.session() as session:
        second = follower.poll(session)
    assert [m.data["round"] for m in second if m.event == "progress"] == [301]
    reads = [(s, p) for s, p in seen if "FROM job_rounds" in s]
    assert len(reads) == 1
    params = reads[0][1]
    assert 300 in (params.values() if isinstance(params, dict) else params)  # round > 300
