"""Explanations over the API with a real worker: per-row contributions, importance by type,
the SHAP summary kept at training, contribution columns in batch predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import artifact, finished, parquet_frame, train_model
from xgenerator.context import Context
from xgenerator.ml import bundle as model_file
from xgenerator.ml.explain import shap_importance

FEATURES = {"x1", "x2", "color", "when"}


def with_dates(rows: int) -> pd.DataFrame:
    frame = classification_frame(rows)
    start = pd.Timestamp("2024-03-01T00:00:00Z")
    frame["when"] = start + pd.to_timedelta(np.arange(rows) * 317, unit="min")
    return frame


def test_explain_importance_and_batch(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = with_dates(300)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    model_id = train_model(client, user, dataset_id, "classification", "label", rounds=8)
    url = f"/models/{model_id}/predict"
    rows = [
        {"x1": 0.5, "x2": 1.0, "color": "red", "when": "2024-03-05T10:00:00Z"},
        {"x1": -2.0, "x2": None, "color": "blue", "when": "2024-04-01"},
    ]

    plain = client.post(url, headers=auth(user), json={"rows": rows}).json()
    assert plain["contributions"] is None
    body = client.post(url, headers=auth(user), json={"rows": rows, "explain": True}).json()
    assert body["predictions"] == plain["predictions"]
    for row, probabilities in zip(body["contributions"], body["probabilities"], strict=True):
        assert set(row) == FEATURES | {"bias"}  # the date-time parts folded into "when"
        p = probabilities["yes"]
        np.testing.assert_allclose(sum(row.values()), np.log(p / (1 - p)), rtol=1e-4)

    # every split-importance type, by dataset column, largest first
    for kind in ("gain", "total_gain", "weight", "cover", "total_cover"):
        response = client.get(f"/models/{model_id}/importance?type={kind}", headers=auth(user))
        assert response.status_code == 200, response.text
        listed = response.json()["importance"]
        assert {i["feature"] for i in listed} == FEATURES
        values = [i["value"] for i in listed]
        assert values == sorted(values, reverse=True) and values[0] > 0
    bad = client.get(f"/models/{model_id}/importance?type=nope", headers=auth(user))
    assert bad.status_code == 422

    # SHAP: computed at training over the rows with a target, equal to a direct computation
    shap = client.get(f"/models/{model_id}/importance?type=shap", headers=auth(user)).json()
    assert shap["rows"] == 300
    raw = client.get(f"/models/{model_id}/download", headers=auth(user)).content
    loaded = model_file.loads(raw)
    direct = shap_importance(loaded.booster, loaded.features, frame, seed=42)["values"]
    got = {i["feature"]: i["value"] for i in shap["importance"]}
    assert got == pytest.approx(direct, rel=1e-5)
    assert [i["feature"] for i in shap["importance"]] == sorted(direct, key=lambda k: -direct[k])

    # batch prediction with contribution columns, equal to the online ones
    accepted = client.post(
        f"/models/{model_id}/predict-batch",
        headers=auth(user),
        json={"dataset_id": dataset_id, "explain": True},
    )
    assert accepted.status_code == 202, accepted.text
    result = finished(client, user, accepted.json()["job_id"])
    columns = [f"contribution_{c}" for c in ("x1", "x2", "color", "when", "bias")]
    assert result["result"]["prediction_columns"][-5:] == columns
    written = parquet_frame(artifact(client, user, result, "predictions.parquet"))
    records = frame.drop(columns=["label"]).head(5).astype(object)
    records["when"] = records["when"].map(lambda t: t.isoformat())
    online = client.post(
        url,
        headers=auth(user),
        json={"rows": records.replace({np.nan: None}).to_dict(orient="records"), "explain": True},
    ).json()["contributions"]
    for name in ("x1", "x2", "color", "when", "bias"):
        np.testing.assert_allclose(
            written[f"contribution_{name}"].head(5), [r[name] for r in online], rtol=1e-5
        )

    # the answer-size bound counts the contributions
    context.settings = context.settings.model_copy(update={"max_predict_values": 20})
    assert client.post(url, headers=auth(user), json={"rows": rows * 2}).status_code == 200
    too_big = client.post(url, headers=auth(user), json={"rows": rows * 2, "explain": True})
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["details"] == {"limit": 20, "values": 4 * 2 * 6}
    context.settings = context.settings.model_copy(update={"max_explain_rows": 1})
    assert client.post(url, headers=auth(user), json={"rows": rows[:1], "explain": True}).is_success
    too_long = client.post(url, headers=auth(user), json={"rows": rows, "explain": True})
    assert too_long.status_code == 413 and too_long.json()["details"] == {"limit": 1, "rows": 2}
