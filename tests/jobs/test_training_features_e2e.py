"""Date-time features and the columns/rows training leaves out, end to end with a real worker
(both databases): CSV and Parquet uploads, JSON rows with and without time zones, batch files."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, create_user, upload
from tests.support.jobs import artifact, finished, parquet_frame, wait_final

ROWS = 300
PARTS = ["epoch", "year", "month", "day", "day_of_week", "day_of_year", "hour", "minute"]


def timed_frame(rows: int = ROWS) -> pd.DataFrame:
    """The label is the UTC half of the day: only the date-time column can predict it."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2024-03-01T00:00:00Z")
    when = start + pd.to_timedelta(np.arange(rows) * 317 + rng.integers(0, 60, rows), unit="min")
    return pd.DataFrame(
        {
            "when": when,
            "customer": [f"c{i:05d}" for i in range(rows)],  # an identifier
            "const": ["same"] * rows,
            "x": rng.normal(size=rows),
            "label": np.where(when.hour < 12, "night", "day"),
        }
    )


def train(client: TestClient, user: dict[str, str], dataset_id: str, **extra: Any) -> str:
    body = {
        "model_name": "timed",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 10,
        "xgb_params": {"max_depth": 3, "eta": 0.5},
        **extra,
    }
    accepted = client.post("/train", headers=auth(user), json=body)
    assert accepted.status_code == 202, accepted.text
    job = wait_final(client, user, accepted.json()["job_id"])
    assert job["status"] == "succeeded", job
    return str(job["job_id"])


def events(client: TestClient, user: dict[str, str], job_id: str) -> dict[str, str]:
    listed = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    return {e["event"]: e["message"] for e in listed}


def predict(client: TestClient, user: dict[str, str], model_id: str, rows: list[Any]) -> Any:
    response = client.post(f"/models/{model_id}/predict", headers=auth(user), json={"rows": rows})
    assert response.status_code == 200, response.text
    return response.json()


def test_csv_date_times_ids_and_the_report(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = timed_frame()
    csv = frame.assign(
        # New York time, with its offset (-05:00, then -04:00 after 10 March)
        when=frame["when"].dt.tz_convert("America/New_York").map(lambda t: t.isoformat())
    )
    csv.loc[csv.index[:6], "label"] = None
    dataset_id = upload(client, user, csv).json()["dataset_id"]
    schema = client.get(f"/datasets/{dataset_id}", headers=auth(user)).json()
    assert next(c for c in schema["columns"] if c["name"] == "when")["kind"] == "datetime"

    job_id = train(client, user, dataset_id, eval_train_every=5)
    job = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
    excluded = [
        {"name": "customer", "reason": "unique_per_row"},
        {"name": "const", "reason": "constant"},
    ]
    report = job["result"]["excluded_features"]
    assert [{k: e[k] for k in ("name", "reason")} for e in report] == excluded
    assert job["result"]["dropped_rows"] == {"missing_target": 6}
    assert job["config"]["features_forced"] is False
    seen = events(client, user, job_id)
    assert "customer (unique_per_row" in seen["features_excluded"]
    assert "const (constant" in seen["features_excluded"]
    assert seen["rows_dropped"].startswith("6 rows")

    model = client.get(f"/models/{job['model_id']}", headers=auth(user)).json()
    assert model["excluded_features"] == report
    assert model["dropped_rows"] == {"missing_target": 6}
    assert [f["name"] for f in model["features"]] == ["when", "x"]
    when = model["features"][0]
    assert (when["kind"], when["parts"]) == ("datetime", PARTS)
    assert when["columns"] == [f"when__{p}" for p in PARTS]
    assert model["metrics"]["accuracy"] > 0.9  # only the date-time carries the label
    assert [h["round"] for h in model["history"] if "train-logloss" in h] == [5, 10]
    assert all("validation-logloss" in h for h in model["history"])

    # one instant in every form a JSON row may give, and the other half of the day
    same = ["2024-03-10T23:30:00-05:00", "2024-03-11T04:30:00Z", "2024-03-11 04:30:00", 1710131400]
    rows = [{"when": w, "x": 0.1} for w in [*same, "2024-03-11T16:30:00+01:00"]]
    body = predict(client, user, job["model_id"], rows)
    assert body["predictions"] == ["night"] * 4 + ["day"]
    assert all(p == body["probabilities"][0] for p in body["probabilities"][:4])
    bad = client.post(
        f"/models/{job['model_id']}/predict",
        headers=auth(user),
        json={"rows": [{"when": "next tuesday", "x": 0.1}]},
    )
    # the column and the row are named; the value itself is never echoed (issue 18)
    assert bad.status_code == 422 and "when" in bad.text and "rows 0" in bad.text
    assert "next tuesday" not in bad.text

    # named columns are used as asked; a switched-off column is simply not a feature
    forced = train(client, user, dataset_id, features=["customer", "x", "when"])
    forced_model = client.get(f"/jobs/{forced}", headers=auth(user)).json()
    assert forced_model["result"]["excluded_features"] == []
    assert "features_excluded" not in events(client, user, forced)
    model_id = forced_model["model_id"]
    named = client.get(f"/models/{model_id}", headers=auth(user)).json()["features"]
    assert [f["name"] for f in named] == ["customer", "x", "when"]
    off = train(client, user, dataset_id, exclude_features=["when"])
    off_job = client.get(f"/jobs/{off}", headers=auth(user)).json()
    off_model = client.get(f"/models/{off_job['model_id']}", headers=auth(user)).json()
    assert [f["name"] for f in off_model["features"]] == ["x"]


def test_parquet_time_zone_column_trains_and_predicts_in_batch(
    client: TestClient, worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = timed_frame().drop(columns=["customer", "const"])
    frame["when"] = frame["when"].dt.tz_convert("Europe/Paris")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    dataset_id = upload(client, user, buffer.getvalue(), filename="d.parquet").json()["dataset_id"]
    job_id = train(client, user, dataset_id)
    job = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
    assert job["result"]["excluded_features"] == []
    assert job["result"]["dropped_rows"] == {"missing_target": 0}
    assert set(events(client, user, job_id)) == {"submitted", "started", "succeeded"}
    model_id = job["model_id"]
    model = client.get(f"/models/{model_id}", headers=auth(user)).json()
    assert model["features"][0]["kind"] == "datetime"
    assert model["metrics"]["accuracy"] > 0.9

    accepted = client.post(
        f"/models/{model_id}/predict-batch", headers=auth(user), json={"dataset_id": dataset_id}
    )
    assert accepted.status_code == 202, accepted.text
    result = finished(client, user, accepted.json()["job_id"])
    batch = parquet_frame(artifact(client, user, result, "predictions.parquet"))
    # the same rows online, as ISO strings with the Paris offset
    rows = [
        {"when": w.isoformat(), "x": float(x)}
        for w, x in zip(frame["when"], frame["x"], strict=True)
    ]
    online = predict(client, user, model_id, rows)
    assert batch["prediction"].tolist() == online["predictions"]
    np.testing.assert_allclose(
        batch["probability_day"], [p["day"] for p in online["probabilities"]], rtol=1e-7
    )
