"""Two trainings on one real worker (concurrency 2, 2 cores) share its cores: the running job
lowers its threads at its next round when the second starts, raises them when it finishes, and
the jobs never hold more threads than the worker's cores. Each change is a `threads` event
that records the budget right after it (jobs/threads.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import wait_final
from tests.support.services import make_settings
from xgenerator.settings import Settings

CORES = 2
MESSAGE = re.compile(
    r"training on (\d+) threads?: (\d+) training job\(s\) on this worker hold (\d+) threads"
    r" for its (\d+) cores"
)


@pytest.fixture
def settings(tmp_path: Path, clean_postgres_url: str, broker_url: str) -> Settings:
    return make_settings(tmp_path, clean_postgres_url, broker_url, worker_threads=CORES)


@pytest.fixture
def worker(settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, name="threads", concurrency=2)
    process.start()
    yield process
    process.stop()


def thread_events(client: TestClient, user: dict[str, str], job_id: str) -> list[tuple[int, ...]]:
    """(threads, jobs, held, cores) of each `threads` event of the job, in order."""
    events = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    found = []
    for event in events:
        if event["event"] == "threads":
            match = MESSAGE.fullmatch(event["message"])
            assert match, event["message"]
            found.append(tuple(int(g) for g in match.groups()))
    return found


def submit(client: TestClient, user: dict[str, str], dataset_id: str, rounds: int) -> str:
    body: dict[str, Any] = {
        "model_name": "shared",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": rounds,
        "xgb_params": {"max_depth": 3, "max_bin": 32},
    }
    response = client.post("/train", headers=auth(user), json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_concurrent_trainings_share_the_cores(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2000)).json()["dataset_id"]
    long_job = submit(client, user, dataset_id, rounds=5000)

    def rounds_done() -> bool:
        job = client.get(f"/jobs/{long_job}", headers=auth(user)).json()
        assert job["status"] in ("queued", "running"), job
        return (job["progress"]["round"] or 0) >= 5

    wait_for(rounds_done, 60, 0.05, "the first training to be under way")
    assert thread_events(client, user, long_job) == []  # alone on every core: nothing to say

    short_job = submit(client, user, dataset_id, rounds=30)
    assert wait_final(client, user, short_job)["status"] == "succeeded"
    wait_for(
        lambda: len(thread_events(client, user, long_job)) >= 2,
        60,
        0.05,
        "the first training to take its cores back",
    )
    client.post(f"/jobs/{long_job}/cancel", headers=auth(user))
    assert wait_final(client, user, long_job)["status"] == "cancelled"

    first = thread_events(client, user, long_job)
    second = thread_events(client, user, short_job)
    assert [t for t, *_ in first] == [1, 2]  # lowered when the second started, then raised
    assert first[0][1] == 2 and first[1][1] == 1
    assert [t for t, *_ in second] == [1]  # started sharing, never raised
    assert second[0][1] == 2
    for _threads, _jobs, held, cores in first + second:
        assert cores == CORES
        assert held <= CORES  # never more threads than cores, at any change
