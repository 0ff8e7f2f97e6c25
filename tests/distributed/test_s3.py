"""Datasets, models and job files on S3 (moto's server over HTTP), with the API in this
process and a real worker in another: the two share only PostgreSQL, Redis and the bucket."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import xgboost as xgb
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support import (
    S3Server,
    WorkerProcess,
    auth,
    classification_frame,
    create_user,
    regression_frame,
    unreachable_s3_store,
    upload,
    wait_for,
)
from tests.support.jobs import wait_final
from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset
from xgenerator.settings import Settings


@pytest.fixture
def s3_worker(s3_settings: Settings) -> Iterator[WorkerProcess]:
    # checkpoints every 4 rounds, so training writes (and then drops) objects mid-job too
    worker = WorkerProcess(
        s3_settings, "s3", concurrency=1, extra_env={"XGEN_CHECKPOINT_EVERY": "4"}
    )
    worker.start()
    yield worker
    worker.stop()


def test_upload_and_delete_a_dataset(
    s3_client: TestClient, s3_server: S3Server, s3_settings: Settings
) -> None:
    client = s3_client
    user = create_user(client)
    created = upload(client, user, regression_frame(120))
    assert created.status_code == 201, created.text
    dataset_id = created.json()["dataset_id"]
    objects = s3_server.keys(s3_settings.resolved_storage_url)
    assert len(objects) == 1 and objects[0].startswith("datasets/")
    assert client.get(f"/datasets/{dataset_id}", headers=auth(user)).json()["row_count"] == 120
    assert client.delete(f"/datasets/{dataset_id}", headers=auth(user)).status_code == 204
    assert s3_server.keys(s3_settings.resolved_storage_url) == []


def test_train_download_predict_retrain(
    s3_client: TestClient, s3_worker: WorkerProcess, s3_server: S3Server, s3_settings: Settings
) -> None:
    client = s3_client
    user = create_user(client)
    frame = classification_frame(300)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    job_id = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "churn",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 10,
            "xgb_params": {"max_depth": 3},
        },
    ).json()["job_id"]
    job = wait_final(client, user, job_id, timeout=60)
    assert job["status"] == "succeeded", (job, s3_worker.output()[-3000:])
    model_id = job["model_id"]

    # the worker wrote the model to the bucket; the API reads it back from there
    objects = s3_server.keys(s3_settings.resolved_storage_url)
    assert sum(o.startswith("models/") for o in objects) == 1
    # the checkpoint goes once the success is committed (never before: a failed commit
    # retries from it), so just after the status says so
    wait_for(
        lambda: (
            not any(
                o.startswith("checkpoints/")
                for o in s3_server.keys(s3_settings.resolved_storage_url)
            )
        ),
        10,
        0.05,
        "the checkpoint to be deleted after the success",
    )
    raw = client.get(f"/models/{model_id}/download", headers=auth(user))
    assert raw.status_code == 200
    booster = xgb.Booster()
    booster.load_model(bytearray(raw.content))
    assert booster.num_boosted_rounds() == 10

    rows = frame.drop(columns=["label"]).head(5).replace({np.nan: None})
    predicted = client.post(
        f"/models/{model_id}/predict",
        headers=auth(user),
        json={"rows": rows.to_dict(orient="records")},
    )
    assert predicted.status_code == 200, predicted.text
    assert set(predicted.json()["predictions"]) <= {"yes", "no"}

    # a retrain starts from the parent model, which the worker loads from the bucket
    retrain = client.post(
        f"/models/{model_id}/retrain",
        headers=auth(user),
        json={"dataset_id": dataset_id, "num_boost_round": 3},
    )
    assert retrain.status_code == 202, retrain.text
    child = wait_final(client, user, retrain.json()["job_id"], timeout=60)
    assert child["status"] == "succeeded", (child, s3_worker.output()[-3000:])
    detail = client.get(f"/models/{child['model_id']}", headers=auth(user)).json()
    assert detail["parent_model_id"] == model_id
    assert detail["num_boost_round"] == 13

    assert client.delete(f"/models/{model_id}", headers=auth(user)).status_code == 204
    objects = s3_server.keys(s3_settings.resolved_storage_url)
    assert sum(o.startswith("models/") for o in objects) == 1


def test_derived_datasets_are_written_and_read_back(
    s3_context: Context, s3_client: TestClient
) -> None:
    """Results a job derives (predictions, processed data) are written through `open`, and
    read back column by column through a file handle, S3 having no local path."""
    user = create_user(s3_client)
    frame = regression_frame(50)
    with s3_context.db.session() as session:
        row = datasets.create_from_frame(
            s3_context, session, user["user_id"], "derived", frame, None
        )
    assert s3_context.store.local_path(row.storage_key) is None
    assert row.size_bytes == s3_context.store.size(row.storage_key) > 0
    back = datasets.load_frame(s3_context.store, row, columns=["y", "x1"])
    assert list(back.columns) == ["y", "x1"]
    np.testing.assert_allclose(back["y"], frame["y"])


def test_storage_down_is_503_and_leaves_no_row(s3_client: TestClient, s3_context: Context) -> None:
    user = create_user(s3_client)
    with unreachable_s3_store() as store:
        s3_context.store = store
        response = upload(s3_client, user, regression_frame(20))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "service_unavailable"
    with s3_context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0
