"""Ranking, survival and quantile models end to end with a real worker (both databases):
the metrics they report, the shape of their online and batch predictions, and a retrain
that keeps the role columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, create_user, upload
from tests.support.jobs import artifact, finished, parquet_frame, wait_final


def tasks_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 4, size=n)
    z = rng.normal(size=n)
    event_time = rng.exponential(np.exp(-x / 2))
    censor = rng.exponential(2.0, size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": z,
            "y": x + rng.normal(size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
            "rel": np.clip(np.round(x + rng.normal(size=n) - 1), 0, 3).astype(int),
            "query": [f"q{i}" for i in rng.integers(0, 30, size=n)],
            "time": np.minimum(event_time, censor),
            "event": (event_time <= censor).astype(int),
        }
    )


def submit(client: TestClient, user: dict[str, str], **body: Any) -> str:
    request = {"model_name": body["task_type"], "num_boost_round": 10, **body}
    response = client.post("/train", headers=auth(user), json=request)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_ranking_survival_and_quantile_models(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = tasks_frame()
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    features = ["x", "z"]
    ranking = submit(
        client,
        user,
        dataset_id=dataset_id,
        task_type="ranking",
        target="rel",
        features=features,
        group_column="query",
        rank_k=5,
    )
    survival = submit(
        client,
        user,
        dataset_id=dataset_id,
        task_type="survival",
        target="time",
        features=features,
        event_column="event",
        xgb_params={"objective": "survival:aft", "aft_loss_distribution": "logistic"},
    )
    quantile = submit(
        client,
        user,
        dataset_id=dataset_id,
        task_type="regression",
        target="y",
        exclude_features=["rel", "query", "time", "event"],
        weight_column="w",
        xgb_params={
            "objective": "reg:quantileerror",
            "quantile_alpha": [0.9, 0.1, 0.5],
            "interaction_constraints": [["x"], ["z"]],
        },
    )
    jobs = {
        name: wait_final(client, user, job)
        for name, job in [("ranking", ranking), ("survival", survival), ("quantile", quantile)]
    }
    for name, job in jobs.items():
        assert job["status"] == "succeeded", (name, job)

    assert set(jobs["ranking"]["result"]["metrics"]) == {"ndcg@5", "map@5"}
    assert set(jobs["survival"]["result"]["metrics"]) == {"c_index", "aft-nloglik"}
    assert jobs["survival"]["result"]["metrics"]["c_index"] > 0.55
    assert set(jobs["quantile"]["result"]["metrics"]) == {
        "pinball@0.1",
        "pinball@0.5",
        "pinball@0.9",
        "coverage@0.1-0.9",
    }
    # the weight column is reported as left out, never a feature
    excluded = jobs["quantile"]["result"]["excluded_features"]
    assert {"name": "w", "reason": "role", "detail": "used as weight_column"} in excluded

    models = {
        name: client.get(f"/models/{job['model_id']}", headers=auth(user)).json()
        for name, job in jobs.items()
    }
    assert models["ranking"]["task_type"] == "ranking"
    assert models["survival"]["params"]["objective"] == "survival:aft"
    assert models["quantile"]["params"]["quantile_alpha"] == [0.1, 0.5, 0.9]
    assert [f["name"] for f in models["quantile"]["features"]] == ["x", "z"]

    rows = [{"x": float(x), "z": 0.0} for x in np.linspace(0, 4, 9)]

    def predict(name: str) -> list[Any]:
        answer = client.post(
            f"/models/{jobs[name]['model_id']}/predict", headers=auth(user), json={"rows": rows}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["probabilities"] is None
        predictions: list[Any] = answer.json()["predictions"]
        return predictions

    scores = predict("ranking")
    assert all(isinstance(s, float) for s in scores)
    times = predict("survival")
    assert all(isinstance(t, float) and t > 0 for t in times)
    assert times[-1] < times[0]  # a higher x, an earlier event
    quantiles = predict("quantile")
    assert all(list(q) == ["0.1", "0.5", "0.9"] for q in quantiles)
    assert all(q["0.1"] <= q["0.5"] <= q["0.9"] for q in quantiles)
    assert quantiles[-1]["0.5"] > quantiles[0]["0.5"]  # y grows with x

    batch = client.post(
        f"/models/{jobs['quantile']['model_id']}/predict-batch",
        headers=auth(user),
        json={"dataset_id": dataset_id},
    )
    assert batch.status_code == 202, batch.text
    done = finished(client, user, batch.json()["job_id"])
    assert done["result"]["prediction_columns"] == ["quantile_0.1", "quantile_0.5", "quantile_0.9"]
    out = parquet_frame(artifact(client, user, done, "predictions.parquet"))
    assert (out["quantile_0.1"] <= out["quantile_0.9"]).all()

    # reports and feedback cover classification and single-output regression: a clear 422
    for name in ("ranking", "quantile"):
        report = client.post(f"/models/{jobs[name]['model_id']}/report", headers=auth(user))
        assert report.status_code == 422 and "reports cover" in report.text
    logged = client.post(
        f"/models/{jobs['survival']['model_id']}/predict",
        headers=auth(user),
        json={"rows": rows[:1], "log": True},
    ).json()
    feedback = client.post(
        f"/models/{jobs['survival']['model_id']}/feedback",
        headers=auth(user),
        json={"items": [{"prediction_id": logged["prediction_ids"][0], "actual": 1.5}]},
    )
    assert feedback.status_code == 422 and "feedback covers" in feedback.text

    # a retrain keeps the group column and k of its parent, from the model file: even when
    # the parent's job record (whose config named them) is gone
    assert client.delete(f"/jobs/{ranking}", headers=auth(user)).status_code == 200
    retrain = client.post(
        f"/models/{jobs['ranking']['model_id']}/retrain",
        headers=auth(user),
        json={"dataset_id": dataset_id, "num_boost_round": 3},
    )
    assert retrain.status_code == 202, retrain.text
    again = wait_final(client, user, retrain.json()["job_id"])
    assert again["status"] == "succeeded", again
    assert "group_column" not in again["config"]
    assert set(again["result"]["metrics"]) == {"ndcg@5", "map@5"}
