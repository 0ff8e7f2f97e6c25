"""Cancelling processing, batch prediction and report jobs while they run, on the machine's
Redis (distributed mode) with both databases: the job ends `cancelled` and leaves nothing
behind: no dataset row, no artifact row, no partial file.

The jobs are made long by one-row chunks; the worker is frozen (SIGSTOP) while the cancel is
sent, so the job cannot finish first however fast the machine is.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from tests.support import (
    WorkerProcess,
    auth,
    classification_frame,
    create_user,
    require_service,
    upload,
)
from tests.support.jobs import counts, finished, train_model, wait_final, wait_running
from tests.support.services import REDIS_URL, make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context

# A database of the machine's Redis of our own: other suites flush and consume database 0.
REDIS_DB = 13


@pytest.fixture
def redis_url() -> str:
    url = f"{REDIS_URL.rsplit('/', 1)[0]}/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        require_service("Redis", exc)
        raise
    finally:
        client.close()
    return url


@pytest.fixture
def slow_service(
    tmp_path: Path, database_url: str, redis_url: str
) -> Iterator[tuple[TestClient, Context, WorkerProcess]]:
    settings = make_settings(tmp_path, database_url, redis_url, job_chunk_rows=1)
    context = build_context(settings)
    worker = WorkerProcess(settings, "slow", concurrency=2)
    worker.start()
    try:
        with TestClient(create_app(settings, context)) as client:
            yield client, context, worker
    finally:
        worker.stop()
        context.close()


@contextmanager
def frozen(worker: WorkerProcess, context: Context, job_id: str) -> Iterator[None]:
    """Stop every process of the worker (its pool and job processes too) until the block
    ends, at a moment when none holds a lock on the job's row: a process frozen inside a
    write would make the cancel wait for it (SQLite's database lock, PostgreSQL's row lock)."""
    assert worker.process is not None
    deadline = time.monotonic() + 30
    while True:
        os.killpg(worker.process.pid, signal.SIGSTOP)
        if row_is_free(context, job_id):
            break
        os.killpg(worker.process.pid, signal.SIGCONT)
        assert time.monotonic() < deadline, "the worker kept the job's row locked for 30 s"
        time.sleep(0.05)
    try:
        yield
    finally:
        os.killpg(worker.process.pid, signal.SIGCONT)


def row_is_free(context: Context, job_id: str) -> bool:
    """Whether another connection can lock the job's row right now (waiting 0.2 s at most)."""
    url = context.settings.resolved_database_url
    if url.startswith("sqlite"):
        lite = sqlite3.connect(url.split("///", 1)[1], timeout=0.2, isolation_level=None)
        try:
            lite.execute("BEGIN IMMEDIATE")
            lite.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # database is locked
            return False
        finally:
            lite.close()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("SET lock_timeout = '200ms'")
        try:
            conn.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", [job_id])
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            conn.rollback()


def stored_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_each_kind_stops_when_cancelled_while_running(
    slow_service: tuple[TestClient, Context, WorkerProcess], tmp_path: Path
) -> None:
    client, context, worker = slow_service
    user = create_user(client)
    frame = classification_frame(4000)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    model_id = train_model(
        client, user, dataset_id, "classification", "label", rounds=5, test_size=0.5
    )
    before, files = counts(context), stored_files(tmp_path / "artifacts")

    def post(path: str, body: dict[str, object] | None = None) -> Callable[[], str]:
        def send() -> str:
            response = client.post(path, headers=auth(user), json=body)
            assert response.status_code == 202, response.text
            job_id: str = response.json()["job_id"]
            return job_id

        return send

    kinds = {
        "process": post(f"/datasets/{dataset_id}/process", {"operation": "normalize"}),
        "predict": post(f"/models/{model_id}/predict-batch", {"dataset_id": dataset_id}),
        "report": post(f"/models/{model_id}/report"),
    }
    for job_type, submit in kinds.items():
        job_id = submit()
        wait_running(client, user, job_id)
        with frozen(worker, context, job_id):
            job = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
            assert job["status"] == "running", job
            premature = client.get(f"/jobs/{job_id}/result", headers=auth(user))
            assert premature.status_code == 409
            assert premature.json()["details"]["status"] == "running"
            cancel = client.post(f"/jobs/{job_id}/cancel", headers=auth(user))
            assert cancel.json()["previous_status"] == "running", cancel.text
        final = wait_final(client, user, job_id)
        assert final["status"] == "cancelled", (job_type, final)
        assert final["job_type"] == job_type
        result = client.get(f"/jobs/{job_id}/result", headers=auth(user)).json()
        assert result["status"] == "cancelled" and result["artifacts"] == []

    jobs, datasets, artifacts = counts(context)
    assert (datasets, artifacts) == before[1:]
    assert jobs == before[0] + 3
    assert stored_files(tmp_path / "artifacts") == files  # no partial file left behind

    # and on this mode a job still runs to its result
    profile = post(f"/datasets/{dataset_id}/process", {"operation": "profile"})()
    body = finished(client, user, profile)
    assert body["result"]["profile"]["rows"] == len(frame)
