"""Cancel and time limit reach a job stuck inside one long boosting round: the lease thread
ends it, the job's code stops at its next check, nothing is retried. Real worker processes,
on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import FAST_LEASE, job, models_of, submit, wait_final
from xgenerator.context import Context
from xgenerator.settings import Settings

# One round of a 100-tree forest per class, 16 deep: many seconds inside XGBoost's C code,
# where no progress callback runs.
HUGE_ROUND = {"max_depth": 16, "num_parallel_tree": 100, "max_bin": 256, "nthread": 1}


def long_round_job(client: TestClient) -> tuple[dict[str, str], str]:
    user = create_user(client)
    # Ten classes of noise: a round grows 10 x 100 full-depth trees, many seconds however
    # idle the machine, and within the cost budget (ml/cost.py).
    frame = classification_frame(40_000)
    frame["label"] = [f"c{i % 10}" for i in range(len(frame))]
    uploaded = upload(client, user, frame)
    dataset_id = uploaded.json()["dataset_id"]
    return user, submit(client, user, dataset_id, 2, **HUGE_ROUND)


def events(client: TestClient, user: dict[str, str], job_id: str) -> list[str]:
    body: dict[str, Any] = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()
    return [e["event"] for e in body["events"]]


@pytest.fixture
def lease_worker(settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, "lease", concurrency=1, extra_env=FAST_LEASE)
    process.start()
    yield process
    process.stop()


def test_a_cancel_reaches_a_job_inside_a_long_round(
    client: TestClient, context: Context, lease_worker: WorkerProcess
) -> None:
    user, job_id = long_round_job(client)
    wait_for(
        lambda: job(client, user, job_id)["progress"]["message"] == "loading data",
        60,
        what="the job to start",
    )
    asked = time.monotonic()
    assert client.post(f"/jobs/{job_id}/cancel", headers=auth(user)).status_code == 200
    final = wait_final(client, user, job_id, timeout=30)
    assert final["status"] == "cancelled"
    assert time.monotonic() - asked < 5  # not at the end of the round
    assert final["progress"]["round"] is None  # the first round had not ended
    wait_for(
        lambda: "ended while running" in lease_worker.output(),
        120,
        what="the job's code to stop at its next check",
    )
    assert job(client, user, job_id)["status"] == "cancelled"
    assert models_of(context, job_id) == 0
    assert events(client, user, job_id).count("cancelled") == 1


@pytest.fixture
def impatient_lease_worker(settings: Settings) -> Iterator[WorkerProcess]:
    env = FAST_LEASE | {"XGEN_SOFT_TIME_LIMIT_S": "2"}
    process = WorkerProcess(settings, "impatient", concurrency=1, extra_env=env)
    process.start()
    yield process
    process.stop()


def test_a_job_past_its_time_limit_inside_a_round_fails_and_is_not_retried(
    client: TestClient, context: Context, impatient_lease_worker: WorkerProcess
) -> None:
    user, job_id = long_round_job(client)
    final = wait_final(client, user, job_id, timeout=60)
    assert final["status"] == "failed", final
    assert final["error"]["error_type"] == "TimeLimitExceeded"
    assert final["progress"]["round"] is None  # ended from outside the round
    wait_for(
        lambda: "ended while running" in impatient_lease_worker.output(),
        120,
        what="the job's code to stop at its next check",
    )
    again = job(client, user, job_id)
    assert (again["status"], again["attempts"]) == ("failed", 1)
    assert events(client, user, job_id) == ["submitted", "started", "failed"]
    assert models_of(context, job_id) == 0
