"""Training end to end with a real `xgenerator worker` subprocess (both databases)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import xgboost as xgb
from fastapi.testclient import TestClient

from tests.support import (
    WorkerProcess,
    auth,
    classification_frame,
    create_user,
    regression_frame,
    upload,
)
from tests.support.jobs import wait_final


def test_train_poll_model_predict(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = classification_frame(400)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    accepted = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "churn",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 20,
            "xgb_params": {"max_depth": 3, "eta": 0.3},
        },
    )
    assert accepted.status_code == 202
    job = wait_final(client, user, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["progress"]["percent"] == 100.0
    assert job["result"]["model_id"] == job["model_id"]
    assert job["result"]["metrics"]["accuracy"] > 0.7
    events = [
        e["event"]
        for e in client.get(f"/jobs/{job['job_id']}/events", headers=auth(user)).json()["events"]
    ]
    assert events == ["submitted", "started", "succeeded"]

    model = client.get(f"/models/{job['model_id']}", headers=auth(user)).json()
    assert model["labels"] == ["no", "yes"]
    assert [f["name"] for f in model["features"]] == ["x1", "x2", "color"]
    assert len(model["history"]) == 20
    assert model["num_boost_round"] == 20
    assert model["xgboost_version"] == xgb.__version__
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "logloss"} <= set(model["metrics"])

    rows = frame.drop(columns=["label"]).head(25)
    records = rows.replace({np.nan: None}).to_dict(orient="records")
    predicted = client.post(
        f"/models/{job['model_id']}/predict", headers=auth(user), json={"rows": records}
    )
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    assert set(body["predictions"]) <= {"yes", "no"}

    # the same numbers as XGBoost itself, on the downloaded UBJSON booster
    raw = client.get(f"/models/{job['model_id']}/download", headers=auth(user))
    assert raw.status_code == 200
    booster = xgb.Booster()
    booster.load_model(bytearray(raw.content))
    categories = next(f["categories"] for f in model["features"] if f["name"] == "color")
    direct = rows.assign(color=pd.Categorical(rows["color"], categories=categories))
    expected = booster.predict(xgb.DMatrix(direct, enable_categorical=True))
    got = [p["yes"] for p in body["probabilities"]]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    mlflow = client.post(
        f"/models/{job['model_id']}/predict",
        headers=auth(user),
        json={"dataframe_records": records},
    )
    assert mlflow.json()["predictions"] == body["predictions"]

    listed = client.get("/jobs", headers=auth(user)).json()
    assert listed["jobs"][0]["model_id"] == job["model_id"]


def test_regression_and_integer_labels(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    reg = upload(client, user, regression_frame(200)).json()["dataset_id"]
    frame = classification_frame(300)
    frame["label"] = np.where(frame["label"] == "yes", 7, 3)
    cls = upload(client, user, frame).json()["dataset_id"]
    a = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "r",
            "dataset_id": reg,
            "task_type": "regression",
            "target": "y",
            "num_boost_round": 15,
        },
    ).json()["job_id"]
    b = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "c",
            "dataset_id": cls,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 15,
        },
    ).json()["job_id"]
    ja, jb = wait_final(client, user, a), wait_final(client, user, b)
    assert ja["status"] == "succeeded" and jb["status"] == "succeeded", (ja, jb)
    assert {"rmse", "mae", "r2"} <= set(ja["result"]["metrics"])
    out = client.post(
        f"/models/{jb['model_id']}/predict",
        headers=auth(user),
        json={"rows": [{"x1": 0.1, "x2": 7.0, "color": "red"}]},
    ).json()
    assert out["predictions"][0] in (3, 7)
    assert set(out["probabilities"][0]) == {"3", "7"}


def test_a_job_that_fails_at_train_time_ends_failed(
    client: TestClient, worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = classification_frame(50).assign(label="same")
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    job_id = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "m",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 5,
        },
    ).json()["job_id"]
    job = wait_final(client, user, job_id)
    assert job["status"] == "failed"
    assert job["error"]["error_type"] == "SingleClass"
    assert "Traceback" not in job["error"]["message"]
    assert job["model_id"] is None


def test_predict_input_errors_are_422(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, regression_frame(100)).json()["dataset_id"]
    job_id = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "m",
            "dataset_id": dataset_id,
            "task_type": "regression",
            "target": "y",
            "num_boost_round": 3,
        },
    ).json()["job_id"]
    model_id = wait_final(client, user, job_id)["model_id"]
    missing = client.post(
        f"/models/{model_id}/predict", headers=auth(user), json={"rows": [{"x1": 1.0}]}
    )
    assert missing.status_code == 422 and "city" in missing.text
    wrong = client.post(
        f"/models/{model_id}/predict",
        headers=auth(user),
        json={"rows": [{"x1": "abc", "city": "oslo"}]},
    )
    assert wrong.status_code == 422 and "x1" in wrong.text
    neither = client.post(f"/models/{model_id}/predict", headers=auth(user), json={})
    assert neither.status_code == 422
    bob = create_user(client, "bob")
    for method, path in [
        ("GET", f"/models/{model_id}"),
        ("GET", f"/models/{model_id}/download"),
        ("POST", f"/models/{model_id}/predict"),
        ("DELETE", f"/models/{model_id}"),
    ]:
        response = client.request(method, path, headers=auth(bob), json={"rows": [{"x1": 1}]})
        assert response.status_code == 404, (method, path, response.text)
    assert client.get("/models", headers=auth(bob)).json()["total"] == 0
    # a finished job's record can be deleted; its model stays
    assert client.delete(f"/jobs/{job_id}", headers=auth(user)).json()["status"] == "deleted"
    assert client.get(f"/models/{model_id}", headers=auth(user)).status_code == 200


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
