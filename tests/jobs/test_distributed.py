"""The distributed mode: PostgreSQL, the machine's Redis, several `xgenerator worker`s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import SLOW, job, submit, wait_final
from xgenerator.api.app import create_app
from xgenerator.context import build_context
from xgenerator.settings import Settings


@pytest.fixture
def distributed_client(distributed_settings: Settings) -> Iterator[TestClient]:
    context = build_context(distributed_settings)
    with TestClient(create_app(distributed_settings, context)) as client:
        yield client
    context.close()


@pytest.fixture
def two_workers(distributed_settings: Settings) -> Iterator[list[WorkerProcess]]:
    workers = [WorkerProcess(distributed_settings, f"w{i}", concurrency=1) for i in (1, 2)]
    for w in workers:
        w.start()
    yield workers
    for w in workers:
        w.stop()


def test_two_workers_run_two_jobs_while_the_third_waits(
    distributed_client: TestClient, two_workers: list[WorkerProcess]
) -> None:
    client = distributed_client
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2000)).json()["dataset_id"]
    ids = [submit(client, user, dataset_id, 400, **SLOW) for _ in range(3)]

    def two_running_one_queued() -> bool:
        statuses = sorted(job(client, user, i)["status"] for i in ids)
        return statuses == ["queued", "running", "running"]

    wait_for(two_running_one_queued, 60, 0.02, "2 running and 1 queued at once")
    finals = [wait_final(client, user, i, timeout=120) for i in ids]
    assert [f["status"] for f in finals] == ["succeeded"] * 3
    assert len({f["model_id"] for f in finals}) == 3
    assert all(f["attempts"] == 1 for f in finals)
    models = client.get("/models", headers=auth(user)).json()
    assert models["total"] == 3
