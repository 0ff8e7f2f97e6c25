"""How a real worker treats jobs: cancel while running, duplicate deliveries, retraining,
the soft time limit. Each test runs on SQLite and PostgreSQL with a private Redis broker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import SLOW, job, models_of, submit, wait_final
from xgenerator.context import Context
from xgenerator.settings import Settings


def test_cancel_a_running_job_stops_it_within_a_round(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(4000)).json()["dataset_id"]
    job_id = submit(client, user, dataset_id, 3000, **SLOW)
    wait_for(
        lambda: (job(client, user, job_id)["progress"].get("round") or 0) >= 3,
        30,
        what="the job to be a few rounds in",
    )
    asked = time.monotonic()
    response = client.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    assert response.json()["previous_status"] == "running"
    final = wait_final(client, user, job_id, timeout=30)
    stopped_after = time.monotonic() - asked
    assert final["status"] == "cancelled"
    assert final["model_id"] is None and models_of(context, job_id) == 0
    assert final["progress"]["round"] < 3000
    # the worker reads the flag at each progress write (every 0.05 s in tests)
    assert stopped_after < 5, stopped_after
    events = [
        e["event"]
        for e in client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    ]
    assert events == ["submitted", "started", "cancel_requested", "cancelled"]


def test_the_same_task_delivered_twice_trains_once(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(300)).json()["dataset_id"]
    job_id = submit(client, user, dataset_id, 30)
    context.dispatcher.send(job_id, "train")  # a duplicate delivery of the same job
    context.dispatcher.send(job_id, "train")
    final = wait_final(client, user, job_id)
    assert final["status"] == "succeeded"
    assert final["attempts"] == 1
    assert models_of(context, job_id) == 1
    # the duplicates are consumed and ignored: no second start, ever
    wait_for(
        lambda: worker.output().count("not claimable") >= 2,
        30,
        what="both duplicate deliveries to be skipped",
    )
    events = [
        e["event"]
        for e in client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    ]
    assert events.count("started") == 1


def test_cancel_a_queued_job_it_never_runs(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(300)).json()["dataset_id"]
    # fill both worker slots so the third job waits in the queue
    busy = [submit(client, user, dataset_id, 3000, **SLOW) for _ in range(2)]
    waiting = submit(client, user, dataset_id, 5)
    wait_for(
        lambda: all(job(client, user, b)["status"] == "running" for b in busy),
        30,
        what="both slots busy",
    )
    assert client.post(f"/jobs/{waiting}/cancel", headers=auth(user)).status_code == 200
    for b in busy:
        client.post(f"/jobs/{b}/cancel", headers=auth(user))
    for b in busy:
        assert wait_final(client, user, b)["status"] == "cancelled"
    # the worker is free now; had the message not been ignored, the job would have started
    wait_for(
        lambda: worker.output().count("not claimable") >= 1,
        30,
        what="the cancelled job's message to be consumed and ignored",
    )
    final = job(client, user, waiting)
    assert final["status"] == "cancelled" and final["started_at"] is None
    assert final["attempts"] == 0


def test_retrain_continues_from_the_parent(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    first = upload(client, user, classification_frame(300, seed=1)).json()["dataset_id"]
    second = upload(client, user, classification_frame(300, seed=2)).json()["dataset_id"]
    parent = wait_final(client, user, submit(client, user, first, 10))["model_id"]
    response = client.post(
        f"/models/{parent}/retrain",
        headers=auth(user),
        json={"dataset_id": second, "num_boost_round": 5},
    )
    assert response.status_code == 202, response.text
    final = wait_final(client, user, response.json()["job_id"])
    assert final["status"] == "succeeded", final
    assert final["job_type"] == "retrain"
    child = client.get(f"/models/{final['model_id']}", headers=auth(user)).json()
    assert child["parent_model_id"] == parent
    assert child["num_boost_round"] == 15
    assert child["labels"] == ["no", "yes"]
    bad = upload(client, user, classification_frame(50).drop(columns=["color"])).json()
    incompatible = client.post(
        f"/models/{parent}/retrain", headers=auth(user), json={"dataset_id": bad["dataset_id"]}
    )
    assert incompatible.status_code == 422
    bob = create_user(client, "bob")
    assert (
        client.post(
            f"/models/{parent}/retrain", headers=auth(bob), json={"dataset_id": second}
        ).status_code
        == 404
    )


@pytest.fixture
def impatient_worker(settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        settings, "impatient", concurrency=1, extra_env={"XGEN_SOFT_TIME_LIMIT_S": "1"}
    )
    process.start()
    yield process
    process.stop()


def test_soft_time_limit_fails_the_job(
    client: TestClient, context: Context, impatient_worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(4000)).json()["dataset_id"]
    final = wait_final(client, user, submit(client, user, dataset_id, 5000, **SLOW))
    assert final["status"] == "failed"
    assert final["error"]["error_type"] == "TimeLimitExceeded"
    assert models_of(context, final["job_id"]) == 0
