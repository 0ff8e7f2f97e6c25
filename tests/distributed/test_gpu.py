"""Jobs that ask for `device: cuda` go to the `gpu` queue, and a `--queues gpu` worker trains
them on the GPU. The second half needs an NVIDIA GPU and is skipped elsewhere, saying why."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import xgboost as xgb
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import wait_final
from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.settings import Settings


def no_gpu_reason() -> str | None:
    """None when an NVIDIA GPU is visible (`nvidia-smi` exits 0), else why not."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "no NVIDIA GPU here: nvidia-smi is not installed"
    done = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        return f"no NVIDIA GPU visible: nvidia-smi exited {done.returncode}"
    return None


NO_GPU = no_gpu_reason()


def train(client: TestClient, user: dict[str, str], dataset_id: str) -> str:
    response = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "on-gpu",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 20,
            "xgb_params": {"device": "cuda", "max_depth": 4},
        },
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_a_cuda_job_waits_on_the_gpu_queue(s3_client: TestClient) -> None:
    """No GPU needed: the routing is decided when the job is submitted."""
    user = create_user(s3_client)
    dataset_id = upload(s3_client, user, classification_frame(100)).json()["dataset_id"]
    job = s3_client.get(f"/jobs/{train(s3_client, user, dataset_id)}", headers=auth(user))
    assert job.json()["queue"] == "gpu"
    assert job.json()["status"] == "queued"


@pytest.fixture
def gpu_worker(s3_settings: Settings) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(s3_settings, "gpu", concurrency=1, queues="gpu")
    worker.start()
    yield worker
    worker.stop()


@pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
def test_a_gpu_worker_trains_with_cuda(
    s3_client: TestClient, s3_context: Context, gpu_worker: WorkerProcess
) -> None:
    assert xgb.build_info().get("USE_CUDA"), "this XGBoost build has no CUDA support"
    user = create_user(s3_client)
    frame = classification_frame(5_000)
    dataset_id = upload(s3_client, user, frame).json()["dataset_id"]
    job = wait_final(s3_client, user, train(s3_client, user, dataset_id), timeout=120)
    assert job["status"] == "succeeded", (job, gpu_worker.output()[-3000:])
    with s3_context.db.session() as session:
        row = session.get(Job, job["job_id"])
        assert row is not None and (row.worker_id or "").startswith("gpu@")
    model = s3_client.get(f"/models/{job['model_id']}", headers=auth(user)).json()
    assert model["params"]["device"] == "cuda"
    assert model["metrics"]["accuracy"] > 0.7
    # XGBoost says so when it falls back to the CPU; it must not have
    assert "No visible GPU" not in gpu_worker.output()
