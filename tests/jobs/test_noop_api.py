"""`POST /jobs/noop`: a job that does nothing, so the benchmarks can time the machinery alone."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, create_user
from tests.support.jobs import wait_final


def test_noop_is_queued_on_the_maintenance_queue(client: TestClient) -> None:
    user = create_user(client)
    response = client.post("/jobs/noop", headers=auth(user))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["job_type"] == "noop" and body["status"] == "queued"
    assert response.headers["Location"] == f"/jobs/{body['job_id']}"
    job = client.get(f"/jobs/{body['job_id']}", headers=auth(user)).json()
    assert job["queue"] == "maintenance"
    assert "celery_task_id" not in job  # the broker stays out of the public API


def test_noop_needs_a_key_and_honours_idempotency(client: TestClient) -> None:
    assert client.post("/jobs/noop").status_code == 401
    user = create_user(client)
    headers = {**auth(user), "Idempotency-Key": "once"}
    first = client.post("/jobs/noop", headers=headers)
    again = client.post("/jobs/noop", headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert client.get("/jobs?job_type=noop", headers=auth(user)).json()["total"] == 1


def test_noop_runs_to_success_on_a_worker(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    job_id = client.post("/jobs/noop", headers=auth(user)).json()["job_id"]
    job = wait_final(client, user, job_id, timeout=30)
    assert job["status"] == "succeeded", job
    assert job["result"] == {"ok": True}
    events = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    assert [e["event"] for e in events] == ["submitted", "started", "succeeded"]
