"""A training too large for a worker's memory fails early, naming the option to use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import wait_final
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.tables import Job
from xgenerator.jobs.kinds.memory import estimate_bytes
from xgenerator.settings import Settings

# 400 rows x 4 columns x 8 bytes x 3 = 38,400 bytes needed; 0.02 MiB = 20,971 allowed
TINY_MB = 0.02


def train_request(dataset_id: str, **extra: object) -> dict[str, object]:
    return {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 5,
        **extra,
    }


def job_rows(context: Context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_the_estimate_grows_with_rows_and_columns() -> None:
    settings = Settings()
    assert estimate_bytes(settings, 400, 4) == 400 * 4 * 8 * 3
    assert estimate_bytes(settings, 800, 4) == 2 * estimate_bytes(settings, 400, 4)


@pytest.mark.parametrize("settings_limit", [TINY_MB])
def test_refused_at_submission_naming_the_option(
    tmp_path: Path, database_url: str, broker_url: str, settings_limit: float
) -> None:
    settings = make_settings(tmp_path, database_url, broker_url, worker_memory_mb=settings_limit)
    context = build_context(settings)
    try:
        with TestClient(create_app(settings, context)) as client:
            user = create_user(client)
            dataset_id = upload(client, user, classification_frame(400)).json()["dataset_id"]
            response = client.post("/train", headers=auth(user), json=train_request(dataset_id))
            assert response.status_code == 422, response.text
            body = response.json()
            assert body["error"] == "too_large_for_memory"
            assert "XGEN_WORKER_MEMORY_MB" in body["message"]
            assert "external_memory" in body["message"]
            assert body["details"]["option"] == "external_memory"
            assert body["details"]["rows"] == 400 and body["details"]["columns"] == 4
            assert job_rows(context) == 0
    finally:
        context.close()


@pytest.fixture
def small_worker(settings: Settings) -> Iterator[WorkerProcess]:
    """A worker whose own memory setting is far below the job's need."""
    limited = settings.model_copy(update={"worker_memory_mb": TINY_MB})
    process = WorkerProcess(limited, name="small", concurrency=1)
    process.start()
    yield process
    process.stop()


def test_a_worker_with_less_memory_fails_the_job_before_loading(
    client: TestClient, small_worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(400)).json()["dataset_id"]
    accepted = client.post("/train", headers=auth(user), json=train_request(dataset_id))
    assert accepted.status_code == 202, accepted.text
    job = wait_final(client, user, accepted.json()["job_id"])
    assert job["status"] == "failed", job
    assert job["attempts"] == 1
    assert job["error"]["error_type"] == "TooLargeForMemory"
    assert "external_memory" in job["error"]["message"]
    assert job["error"]["details"]["worker_memory_mb"] == TINY_MB


def test_external_memory_trains_where_memory_would_not(
    client: TestClient, small_worker: WorkerProcess
) -> None:
    """The way out the error names: the same job with external_memory succeeds on that worker."""
    user = create_user(client)
    frame = classification_frame(400)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    accepted = client.post(
        "/train",
        headers=auth(user),
        json=train_request(dataset_id, external_memory=True, num_boost_round=8),
    )
    assert accepted.status_code == 202, accepted.text
    job = wait_final(client, user, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["metrics"]["accuracy"] > 0.7
    events = client.get(f"/jobs/{job['job_id']}/events", headers=auth(user)).json()["events"]
    assert any(e["event"] == "external_memory" for e in events)
    model = client.get(f"/models/{job['model_id']}", headers=auth(user)).json()
    assert len(model["history"]) == 8
    assert [f["name"] for f in model["features"]] == ["x1", "x2", "color"]
    rows = [{"x1": 0.5, "x2": 7.0, "color": "red"}]
    predicted = client.post(
        f"/models/{job['model_id']}/predict", headers=auth(user), json={"rows": rows}
    )
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["predictions"] == ["yes"]


def test_external_memory_refuses_what_it_cannot_do(client: TestClient) -> None:
    user = create_user(client)
    frame = classification_frame(100).assign(w=1.0)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    weighted = client.post(
        "/train",
        headers=auth(user),
        json=train_request(dataset_id, external_memory=True, weight_column="w"),
    )
    assert weighted.status_code == 422
    assert "external_memory" in weighted.json()["message"]
    cv = client.post(
        "/cv", headers=auth(user), json=train_request(dataset_id, external_memory=True)
    )
    assert cv.status_code == 422
    assert "external_memory" in cv.json()["message"]
