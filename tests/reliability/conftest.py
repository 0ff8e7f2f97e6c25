"""Fault injection on the distributed mode: PostgreSQL, the machine's Redis, real workers.

Short leases and a fast reconciler make failures visible in seconds instead of minutes.
Every test ends by checking the invariants: every job final, at most one model per job,
attempts within the maximum."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.tables import Job, Model
from xgenerator.jobs.status import JobStatus
from xgenerator.settings import Settings

FAST_RECOVERY = {
    "lease_s": 3.0,
    "reconcile_interval_s": 0.5,
    "requeue_after_s": 2.0,
    "checkpoint_every": 5,
    "max_attempts": 3,
    "progress_interval_s": 0.1,
    "shutdown_grace_s": 2.0,
}


@pytest.fixture
def rsettings(tmp_path: Path, clean_postgres_url: str, shared_redis_url: str) -> Settings:
    return make_settings(tmp_path, clean_postgres_url, shared_redis_url, **FAST_RECOVERY)


@pytest.fixture
def rcontext(rsettings: Settings) -> Iterator[Context]:
    context = build_context(rsettings)
    yield context
    context.close()


@pytest.fixture
def rclient(rsettings: Settings, rcontext: Context) -> Iterator[TestClient]:
    with TestClient(create_app(rsettings, rcontext)) as client:
        yield client


WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(rsettings: Settings) -> Iterator[WorkerFactory]:
    """Start named workers (concurrency 1 by default); all are stopped at the end."""
    started: list[WorkerProcess] = []

    def start(name: str, settings: Settings | None = None, **kwargs: object) -> WorkerProcess:
        kwargs.setdefault("concurrency", 1)
        worker = WorkerProcess(settings or rsettings, name, **kwargs)  # type: ignore[arg-type]
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def check_invariants(context: Context) -> list[Job]:
    """Every job reached a final status; at most one model per job; attempts <= max."""
    with context.db.session() as session:
        jobs = list(session.scalars(select(Job)))
        counts = session.execute(select(Model.job_id, func.count()).group_by(Model.job_id))
        per_job = {job_id: count for job_id, count in counts}
    for job in jobs:
        assert JobStatus(job.status).is_final, (job.id, job.status)
        assert per_job.get(job.id, 0) <= 1, job.id
        assert job.attempts <= context.settings.max_attempts, (job.id, job.attempts)
        assert (per_job.get(job.id, 0) == 1) == (
            job.status == JobStatus.SUCCEEDED and job.job_type in ("train", "retrain")
        ), job.id
    return jobs


# A job that is still training when a test acts on it, on a fast machine too: ~6 s on an idle
# 2-core machine here (a test acting within a second of its start), while the deadlines of
# 120 s leave room for one twenty times slower. Checkpoints every 100 rounds, not every 5:
# each saves the whole, growing model.
LONG = {"rows": 10_000, "rounds": 4_000}
LONG_CHECKPOINTS = {"checkpoint_every": 100}


def jobs(context: Context) -> dict[str, Job]:
    with context.db.session() as session:
        return {j.id: j for j in session.scalars(select(Job))}


def events(client: TestClient, user: dict[str, str], job_id: str) -> list[str]:
    body = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()
    return [e["event"] for e in body["events"]]


def all_final(context: Context) -> bool:
    return all(JobStatus(j.status).is_final for j in jobs(context).values())


def dataset(client: TestClient, rows: int = 3000) -> tuple[dict[str, str], str]:
    user = create_user(client)
    return user, upload(client, user, classification_frame(rows)).json()["dataset_id"]
