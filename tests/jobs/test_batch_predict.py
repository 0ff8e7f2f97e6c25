"""Batch prediction end to end with a real worker (both databases): the same numbers as
online predictions, a registered dataset, a downloadable file, and the 422s before a job."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import artifact, counts, finished, parquet_frame, train_model
from xgenerator.context import Context


def test_batch_predictions_equal_online_predictions(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = classification_frame(300)
    dataset_id = upload(client, user, frame, name="customers").json()["dataset_id"]
    model_id = train_model(client, user, dataset_id, "classification", "label", rounds=15)

    accepted = client.post(
        f"/models/{model_id}/predict-batch", headers=auth(user), json={"dataset_id": dataset_id}
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    assert accepted.json()["job_type"] == "predict"
    result = finished(client, user, job_id)
    assert result["result"]["rows"] == len(frame)
    assert result["result"]["prediction_columns"] == [
        "prediction",
        "probability_no",
        "probability_yes",
    ]
    batch = parquet_frame(artifact(client, user, result, "predictions.parquet"))
    assert list(batch.columns) == [
        *frame.columns,
        "prediction",
        "probability_no",
        "probability_yes",
    ]
    np.testing.assert_allclose(batch["x1"], frame["x1"])

    records = frame.drop(columns=["label"]).replace({np.nan: None}).to_dict(orient="records")
    online = client.post(
        f"/models/{model_id}/predict", headers=auth(user), json={"rows": records}
    ).json()
    assert batch["prediction"].tolist() == online["predictions"]
    np.testing.assert_allclose(
        batch["probability_yes"], [p["yes"] for p in online["probabilities"]], rtol=1e-7
    )

    out = client.get(f"/datasets/{result['result']['dataset_id']}", headers=auth(user)).json()
    assert out["row_count"] == len(frame) and out["source_job_id"] == job_id
    assert "prediction" in out["categorical_features"]
    job = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
    assert job["config"] == {
        "model_id": model_id,
        "dataset_id": dataset_id,
        "output_name": None,
        "explain": False,
    }
    assert job["model_name"] == "classification-model"
    listed = client.get("/jobs", headers=auth(user), params={"job_type": "predict"}).json()
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]

    # bad input: 422 (or 404) before any job exists
    lacking = upload(client, user, frame.drop(columns=["color"])).json()["dataset_id"]
    before = counts(context)
    for body, status, mentioned in [
        ({"dataset_id": lacking}, 422, "color"),
        ({}, 422, "dataset_id"),
        ({"dataset_id": dataset_id, "chunk": 5}, 422, "chunk"),
        ({"dataset_id": "nope"}, 404, "dataset_not_found"),
    ]:
        response = client.post(f"/models/{model_id}/predict-batch", headers=auth(user), json=body)
        assert response.status_code == status, (body, response.text)
        assert mentioned in response.text
    assert (
        client.post(
            "/models/nope/predict-batch", headers=auth(user), json={"dataset_id": dataset_id}
        ).status_code
        == 404
    )
    bob = create_user(client, "bob")
    bobs = upload(client, bob, frame).json()["dataset_id"]
    assert (
        client.post(
            f"/models/{model_id}/predict-batch", headers=auth(bob), json={"dataset_id": bobs}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/models/{model_id}/predict-batch", headers=auth(user), json={"dataset_id": bobs}
        ).status_code
        == 404
    )
    assert counts(context)[0] == before[0]
    assert (
        client.get(f"/jobs/{job_id}/artifacts/predictions.parquet", headers=auth(bob)).status_code
        == 404
    )

    # the file is the dataset's: deleting the dataset takes the download with it
    client.delete(f"/datasets/{result['result']['dataset_id']}", headers=auth(user))
    gone = client.get(f"/jobs/{job_id}/artifacts/predictions.parquet", headers=auth(user))
    assert gone.status_code == 404 and gone.json()["error"] == "artifact_not_found"
