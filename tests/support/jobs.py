"""Helpers for tests that run jobs end to end: submit, follow, and read what they left."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import auth, wait_for
from xgenerator.context import Context
from xgenerator.db.tables import Dataset, Job, JobArtifact, Model

# Parameters that make a training slow enough to still be running when a test acts on it.
SLOW = {"max_depth": 8, "eta": 0.01, "nthread": 1}


def in_process(context: Context) -> Context:
    """The same context with jobs run in this process (`runner.run` without the fork of
    `jobs/isolation.py`), for tests that watch or fault a job's code from here."""
    return replace(context, settings=context.settings.model_copy(update={"isolate_jobs": False}))


def wait_final(
    client: TestClient, user: dict[str, str], job_id: str, timeout: float = 90
) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(final, timeout, 0.1, f"job {job_id} to finish")


def train_body(dataset_id: str, rounds: int, **params: Any) -> dict[str, Any]:
    """A `/train` body: model "m", classifying `label` (classification_frame's target)."""
    return {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": rounds,
        "xgb_params": params,
    }


def submit(
    client: TestClient, user: dict[str, str], dataset_id: str, rounds: int, **params: Any
) -> str:
    response = client.post(
        "/train", headers=auth(user), json=train_body(dataset_id, rounds, **params)
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def submit_job(
    client: TestClient,
    user: dict[str, str],
    kind: str,
    dataset_id: str,
    rounds: int,
    model_name: str = "m",
    **fields: Any,
) -> str:
    """POST a classification of `label` to `/{kind}` (train, cv, tune); the new job's id."""
    response = client.post(
        f"/{kind}",
        headers=auth(user),
        json={
            "model_name": model_name,
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": rounds,
            **fields,
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["job_type"] == kind
    job_id: str = response.json()["job_id"]
    return job_id


def job(client: TestClient, user: dict[str, str], job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
    return body


def models_of(context: Context, job_id: str) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count()).where(Model.job_id == job_id)) or 0


def job_count(context: Context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def train_model(
    client: TestClient,
    user: dict[str, str],
    dataset_id: str,
    task_type: str,
    target: str,
    rounds: int = 10,
    **extra: Any,
) -> str:
    response = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": f"{task_type}-model",
            "dataset_id": dataset_id,
            "task_type": task_type,
            "target": target,
            "num_boost_round": rounds,
            **extra,
        },
    )
    assert response.status_code == 202, response.text
    job = wait_final(client, user, response.json()["job_id"])
    assert job["status"] == "succeeded", job
    model_id: str = job["model_id"]
    return model_id


def finished(client: TestClient, user: dict[str, str], job_id: str) -> dict[str, Any]:
    """Wait for the job to succeed and return GET /jobs/{id}/result."""
    job = wait_final(client, user, job_id)
    assert job["status"] == "succeeded", job
    response = client.get(f"/jobs/{job_id}/result", headers=auth(user))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def artifact(client: TestClient, user: dict[str, str], result: dict[str, Any], name: str) -> bytes:
    """Download an artifact listed in a job's result, checking its listed size."""
    listed = {a["name"]: a for a in result["artifacts"]}
    assert name in listed, listed
    response = client.get(listed[name]["download_url"], headers=auth(user))
    assert response.status_code == 200, response.text
    assert len(response.content) == listed[name]["size"]
    assert response.headers["content-type"].startswith(listed[name]["content_type"])
    return response.content


def parquet_frame(data: bytes) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(io.BytesIO(data)).to_pandas()
    return frame


def running_with_progress(client: TestClient, user: dict[str, str], job_id: str) -> bool:
    job = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
    assert job["status"] in ("queued", "running"), job
    return bool(job["status"] == "running" and job["progress"]["percent"] > 0)


def wait_running(client: TestClient, user: dict[str, str], job_id: str) -> None:
    """Until the job is inside its chunk loop (it has reported progress)."""
    wait_for(
        lambda: running_with_progress(client, user, job_id),
        60,
        0.005,
        f"job {job_id} to report progress",
    )


def counts(context: Context) -> tuple[int, int, int]:
    """(jobs, datasets, job artifacts) in the database."""
    with context.db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(t)) or 0
            for t in (Job, Dataset, JobArtifact)
        )


FAST_LEASE = {"XGEN_LEASE_S": "1.5"}  # a worker's lease thread then looks every 0.5 s
