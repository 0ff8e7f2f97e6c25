"""Three workers, as on three machines, against one PostgreSQL, one Redis and one bucket:
a burst of jobs runs exactly once each, spread over the workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.distributed.fleet import (
    start_workers,
    stop_workers,
    submit_trainings,
    tally,
    wait_all_final,
)
from tests.support import WorkerProcess, classification_frame, create_user, upload
from xgenerator.context import Context
from xgenerator.settings import Settings

JOBS = 30


@pytest.fixture
def three_workers(s3_settings: Settings) -> Iterator[list[WorkerProcess]]:
    workers = start_workers(s3_settings, 3, concurrency=1)
    yield workers
    stop_workers(workers)


def test_thirty_jobs_run_exactly_once_across_three_workers(
    s3_client: TestClient, s3_context: Context, three_workers: list[WorkerProcess]
) -> None:
    user = create_user(s3_client)
    dataset_id = upload(s3_client, user, classification_frame(200)).json()["dataset_id"]
    ids = submit_trainings(s3_client, user, dataset_id, JOBS, rounds=5)
    wait_all_final(s3_context, ids, timeout=120)

    result = tally(s3_context, ids)
    logs = "\n".join(w.output()[-2000:] for w in three_workers)
    assert result.statuses == {"succeeded": JOBS}, (result, logs)
    assert result.attempts == {1: JOBS}
    assert set(result.started_events) == set(ids)
    assert set(result.started_events.values()) == {1}  # no job started twice
    assert set(result.models) == set(ids) and set(result.models.values()) == {1}
    # a worker_id is "<celery hostname>:<instance>:<pid>", the hostname "hostN@<machine>"
    names = {host.split("@", 1)[0] for host in result.hosts}
    assert names <= {w.name for w in three_workers}, result.hosts
    assert len(names) >= 2, f"all jobs ran on one worker: {result.hosts}"
