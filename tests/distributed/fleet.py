"""A fleet of workers and a burst of jobs: shared by the many-workers test and
`bench/distributed.py`, so the benchmark measures exactly what the test checks."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select

from tests.support import WorkerProcess, auth, wait_for
from xgenerator.context import Context
from xgenerator.db.tables import Job, JobEvent, Model
from xgenerator.jobs.status import JobStatus
from xgenerator.settings import Settings


def start_workers(settings: Settings, count: int, concurrency: int = 1) -> list[WorkerProcess]:
    """`count` workers named host1, host2, ... booted side by side (each is "hostN@machine":
    a distinct Celery hostname, as separate machines would have)."""
    workers = [
        WorkerProcess(settings, f"host{i}", concurrency=concurrency) for i in range(1, count + 1)
    ]
    for worker in workers:
        worker.launch()
    for worker in workers:
        worker.wait_ready(90)
    return workers


def stop_workers(workers: list[WorkerProcess]) -> None:
    """Side by side: each warm shutdown takes seconds."""
    with ThreadPoolExecutor(len(workers) or 1) as pool:
        list(pool.map(WorkerProcess.stop, workers))


class Poster(Protocol):
    """A TestClient, or an httpx client on a real `xgenerator api` (the benchmark)."""

    def post(self, url: str, *, headers: dict[str, str], json: Any = None) -> Any: ...


def submit_trainings(
    client: Poster, user: dict[str, str], dataset_id: str, count: int, rounds: int = 5
) -> list[str]:
    """Small jobs on one thread each: XGBoost's default of one thread per core, on a machine
    busy with other processes (here: other workers), made these jobs ~5x slower."""
    ids = []
    for i in range(count):
        response = client.post(
            "/train",
            headers=auth(user),
            json={
                "model_name": f"m{i}",
                "dataset_id": dataset_id,
                "task_type": "classification",
                "target": "label",
                "num_boost_round": rounds,
                "xgb_params": {"max_depth": 2, "nthread": 1},
            },
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["job_id"])
    return ids


def wait_all_final(context: Context, ids: list[str], timeout: float) -> float:
    """Wait until every job is final (one query per poll); returns the time it took."""
    start = time.monotonic()

    def all_final() -> bool:
        with context.db.session() as session:
            done = session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.id.in_(ids), Job.status.in_([s.value for s in JobStatus if s.is_final]))
            )
        return done == len(ids)

    wait_for(all_final, timeout, 0.1, f"{len(ids)} jobs to finish")
    return time.monotonic() - start


@dataclass
class Tally:
    statuses: Counter[str]
    attempts: Counter[int]
    started_events: Counter[str]  # job id -> number of `started` events
    models: Counter[str]  # job id -> number of models
    hosts: Counter[str]  # worker process ("<node name>:<instance>", no ":pid") -> jobs run


def tally(context: Context, ids: list[str]) -> Tally:
    with context.db.session() as session:
        jobs = list(session.scalars(select(Job).where(Job.id.in_(ids))))
        started = session.scalars(
            select(JobEvent.job_id).where(JobEvent.job_id.in_(ids), JobEvent.event == "started")
        )
        models = session.scalars(select(Model.job_id).where(Model.job_id.in_(ids)))
        return Tally(
            statuses=Counter(j.status for j in jobs),
            attempts=Counter(j.attempts for j in jobs),
            started_events=Counter(started),
            models=Counter(models),
            hosts=Counter((j.worker_id or "?").rsplit(":", 1)[0] for j in jobs),
        )
