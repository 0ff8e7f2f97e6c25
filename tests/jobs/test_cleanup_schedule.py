"""The retention cleanup on its schedule, end to end: a timer in the embedded worker
(`worker --beat`), and Celery beat (`xgenerator beat`) in Redis mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support import WorkerProcess, create_user, settings_env, wait_for
from tests.support.services import Service, ServiceFactory, add_job
from xgenerator.db.tables import Job
from xgenerator.embedded import WorkerProcess as EmbeddedWorker
from xgenerator.settings import Settings


def cleanups_done(svc: Service) -> list[Job]:
    with svc.context.db.session() as session:
        query = select(Job).where(Job.job_type == "cleanup", Job.status == "succeeded")
        return list(session.scalars(query))


def expired_job(svc: Service) -> str:
    user = create_user(svc.client)
    return add_job(
        svc.context, user["user_id"], "succeeded", datetime.now(UTC) - timedelta(days=91)
    )


def gone(svc: Service, job_id: str) -> bool:
    with svc.context.db.session() as session:
        return session.get(Job, job_id) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_embedded_worker_runs_the_cleanup_on_a_timer(service: ServiceFactory) -> None:
    svc = service(cleanup_interval_s=2)
    job_id = expired_job(svc)
    worker = WorkerProcess(svc.settings, "embedded", concurrency=1, extra_args=["--beat"])
    worker.start()
    try:
        wait_for(lambda: gone(svc, job_id), 30, 0.2, "the timer's cleanup to run")
        [done, *_] = wait_for(lambda: cleanups_done(svc), 10, 0.2, "a finished cleanup job")
    finally:
        worker.stop()
    assert (done.user_id, done.queue) == ("system", "maintenance")
    assert done.result is not None and done.result["jobs_deleted"] == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_celery_beat_schedules_the_cleanup_in_redis_mode(
    service: ServiceFactory, shared_redis_url: str
) -> None:
    svc = service(broker=shared_redis_url, cleanup_interval_s=1)
    job_id = expired_job(svc)
    log = svc.settings.data_dir / "beat.log"
    worker = WorkerProcess(svc.settings, "plain", concurrency=1)  # no timer of its own
    with log.open("ab") as handle:
        beat = subprocess.Popen(
            [sys.executable, "-m", "xgenerator", "beat", "--loglevel", "INFO"],
            env=settings_env(svc.settings),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        worker.start()
        wait_for(lambda: gone(svc, job_id), 60, 0.2, "beat's cleanup to run")
        wait_for(lambda: cleanups_done(svc), 10, 0.2, "a finished cleanup job")
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(30)
        worker.stop()
    assert "xgenerator.submit_cleanup" in log.read_text(errors="replace")
    assert (svc.settings.data_dir / "celerybeat-schedule").exists() or any(
        p.name.startswith("celerybeat-schedule") for p in svc.settings.data_dir.iterdir()
    )


def test_serve_starts_its_worker_with_the_timer_on_cpu_queues(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="redis+socket:///tmp/x.sock")
    command = EmbeddedWorker(settings, concurrency=2).command()
    assert "--beat" in command
    queues = command[command.index("--queues") + 1].split(",")
    assert sorted(queues) == ["maintenance", "predict", "process", "train"]  # never gpu
