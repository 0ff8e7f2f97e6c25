"""GET /jobs/{id}/result and artifact downloads, on job rows written directly (the worker
side, which records artifacts, is covered by the end-to-end tests of each kind)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import auth, create_user
from xgenerator.context import Context
from xgenerator.db.tables import Job, JobArtifact
from xgenerator.jobs import repository
from xgenerator.jobs.status import JobStatus


def make_job(context: Context, user_id: str) -> str:
    with context.db.session() as session:
        job = repository.create(
            session, Job(user_id=user_id, job_type="process", queue="process", config={})
        )
        return job.id


def finish(context: Context, job_id: str, files: dict[str, bytes]) -> None:
    with context.db.session() as session:
        repository.claim(session, job_id, "w", 60)
    with context.db.session() as session:
        assert repository.transition(
            session,
            job_id,
            JobStatus.SUCCEEDED,
            event="succeeded",
            attempt=1,
            result={"answer": 42},
        )
        for name, data in files.items():
            key = context.store.new_key("artifacts", ".bin")
            context.store.put_bytes(key, data)
            session.add(
                JobArtifact(
                    job_id=job_id,
                    name=name,
                    content_type="text/plain",
                    storage_key=key,
                    size_bytes=len(data),
                )
            )


def test_result_only_once_finished_and_artifacts_owner_only(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    job_id = make_job(context, user["user_id"])
    early = client.get(f"/jobs/{job_id}/result", headers=auth(user))
    assert early.status_code == 409
    assert early.json()["details"] == {"status": "queued"}

    finish(context, job_id, {"b.txt": b"bee", "a.txt": b"hello"})
    body = client.get(f"/jobs/{job_id}/result", headers=auth(user)).json()
    assert body["job_id"] == job_id and body["job_type"] == "process"
    assert body["result"] == {"answer": 42} and body["error"] is None
    assert body["artifacts"] == [
        {
            "name": "a.txt",
            "content_type": "text/plain",
            "size": 5,
            "download_url": f"/jobs/{job_id}/artifacts/a.txt",
        },
        {
            "name": "b.txt",
            "content_type": "text/plain",
            "size": 3,
            "download_url": f"/jobs/{job_id}/artifacts/b.txt",
        },
    ]
    download = client.get(f"/jobs/{job_id}/artifacts/a.txt", headers=auth(user))
    assert download.status_code == 200 and download.content == b"hello"
    assert download.headers["content-type"].startswith("text/plain")
    assert 'filename="a.txt"' in download.headers["content-disposition"]
    assert "attachment" in download.headers["content-disposition"]
    missing = client.get(f"/jobs/{job_id}/artifacts/c.txt", headers=auth(user))
    assert missing.status_code == 404 and missing.json()["error"] == "artifact_not_found"

    bob = create_user(client, "bob")
    for path in (f"/jobs/{job_id}/result", f"/jobs/{job_id}/artifacts/a.txt"):
        response = client.get(path, headers=auth(bob))
        assert response.status_code == 404 and response.json()["error"] == "job_not_found"
    assert client.get("/jobs/nope/result", headers=auth(user)).status_code == 404


def test_a_failed_job_has_a_result_with_its_error(client: TestClient, context: Context) -> None:
    user = create_user(client)
    job_id = make_job(context, user["user_id"])
    with context.db.session() as session:
        repository.transition(
            session,
            job_id,
            JobStatus.FAILED,
            event="failed",
            error={"error_type": "InvalidInput", "message": "bad", "details": None},
        )
    body = client.get(f"/jobs/{job_id}/result", headers=auth(user)).json()
    assert body["status"] == "failed" and body["result"] is None
    assert body["error"]["error_type"] == "InvalidInput" and body["artifacts"] == []


def test_deleting_a_finished_job_removes_its_events_and_result_files(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    job_id = make_job(context, user["user_id"])
    finish(context, job_id, {"a.txt": b"hello"})
    with context.db.session() as session:
        [artifact] = repository.artifacts(session, job_id)
    assert context.store.exists(artifact.storage_key)
    deleted = client.delete(f"/jobs/{job_id}", headers=auth(user))
    assert deleted.json()["status"] == "deleted"
    assert not context.store.exists(artifact.storage_key)
    with context.db.session() as session:
        assert repository.events(session, job_id) == []
        assert repository.artifacts(session, job_id) == []
