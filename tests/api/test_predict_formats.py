"""Every input format and output choice of online prediction (issue 18): the same rows give
the same numbers as XGBoost's own `inplace_predict`, whatever shape they arrive in."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import train_model
from xgenerator.ml import bundle as bundles
from xgenerator.ml.features import to_model_frame

FEATURES = ["x1", "x2", "color"]


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame[FEATURES].to_dict("records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in records
    ]


def _p_yes(response: Any) -> np.ndarray[Any, Any]:
    assert response.status_code == 200, response.text
    return np.array([p["yes"] for p in response.json()["probabilities"]])


def test_every_input_format_predicts_like_inplace_predict(
    client: TestClient, worker: WorkerProcess
) -> None:
    user = create_user(client)
    frame = classification_frame(200)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    model_id = train_model(client, user, dataset_id, "classification", "label", rounds=5)
    model = bundles.loads(client.get(f"/models/{model_id}/download", headers=auth(user)).content)
    sample = frame.iloc[:30].reset_index(drop=True)
    coded = to_model_frame(sample[FEATURES], model.features)
    yes = list(model.labels.classes).index("yes") if model.labels else -1
    expected = np.asarray(model.booster.inplace_predict(coded), dtype=np.float64)
    expected = expected if yes == 1 else 1.0 - expected
    rows = _rows(sample)
    url, headers = f"/models/{model_id}/predict", auth(user)
    names = [f.name for f in model.features]

    bodies: dict[str, dict[str, Any]] = {
        "rows": {"rows": rows},
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {
            "dataframe_split": {"columns": FEATURES, "data": [list(r.values()) for r in rows]}
        },
        "instances objects": {"instances": rows},
        "instances lists": {"instances": [[r[n] for n in names] for r in rows]},
        "inputs lists": {"inputs": [[r[n] for n in names] for r in rows]},
        "inputs columns": {"inputs": {n: [r[n] for r in rows] for n in FEATURES}},
    }
    for name, body in bodies.items():
        got = _p_yes(client.post(url, headers=headers, json=body))
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=name)

    csv = sample[FEATURES].to_csv(index=False).encode()
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(sample[FEATURES]), buffer)
    parquet = buffer.getvalue()
    for content_type, data in (
        ("text/csv", csv),
        ("application/vnd.apache.parquet", parquet),
        ("application/octet-stream", parquet),
    ):
        response = client.post(url, headers={**headers, "content-type": content_type}, content=data)
        np.testing.assert_allclose(_p_yes(response), expected, rtol=1e-6, err_msg=content_type)
    bad_type = client.post(url, headers={**headers, "content-type": "text/plain"}, content=b"x")
    assert bad_type.status_code == 422

    # MLflow's scoring protocol: {"predictions": [...]}, from JSON or CSV.
    labels = ["yes" if p > 0.5 else "no" for p in expected]
    invocations = f"/models/{model_id}/invocations"
    answer = client.post(invocations, headers=headers, json=bodies["dataframe_split"])
    assert answer.status_code == 200 and answer.json() == {"predictions": labels}
    answer = client.post(invocations, headers={**headers, "content-type": "text/csv"}, content=csv)
    assert answer.json() == {"predictions": labels}
    answer = client.post(
        invocations, headers=headers, json={"instances": rows, "output": "probability"}
    )
    got = np.array([p["yes"] for p in answer.json()["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert (
        client.post(invocations, headers=headers, json={"rows": rows, "log": True}).status_code
        == 422
    )

    # Output choices.
    margin = client.post(url, headers=headers, json={"rows": rows, "output": "margin"}).json()
    raw_margin = model.booster.inplace_predict(coded, predict_type="margin")
    np.testing.assert_allclose(margin["predictions"], raw_margin, rtol=1e-6)
    assert margin["output"] == "margin" and margin["probabilities"] is None
    probs = client.post(url, headers=headers, json={"rows": rows, "output": "probability"}).json()
    sums = [sum(p.values()) for p in probs["predictions"]]
    np.testing.assert_allclose(sums, 1.0, rtol=1e-6)
    label = client.post(url, headers=headers, json={"rows": rows, "output": "label"}).json()
    assert label["predictions"] == labels
    contributions = client.post(
        url, headers=headers, json={"rows": rows[:5], "output": "contributions"}
    ).json()["predictions"]
    np.testing.assert_allclose([sum(c.values()) for c in contributions], raw_margin[:5], rtol=1e-4)
    by_query = client.post(
        f"{url}?output=margin", headers={**headers, "content-type": "text/csv"}, content=csv
    )
    np.testing.assert_allclose(by_query.json()["predictions"], raw_margin, rtol=1e-6)


def test_columns_are_checked_and_errors_never_echo_values(
    client: TestClient, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(200)).json()["dataset_id"]
    model_id = train_model(client, user, dataset_id, "classification", "label", rounds=3)
    url, headers = f"/models/{model_id}/predict", auth(user)
    row = {"x1": 0.5, "x2": 1.0, "color": "red"}

    extra = client.post(url, headers=headers, json={"rows": [{**row, "zip": 1, "age": 2}]})
    assert extra.status_code == 200 and extra.json()["ignored_columns"] == ["zip", "age"]
    assert client.post(url, headers=headers, json={"rows": [row]}).json()["ignored_columns"] == []
    refused = client.post(
        url, headers=headers, json={"rows": [{**row, "zip": 1}], "extra_columns": "error"}
    )
    assert refused.status_code == 422 and refused.json()["details"] == {"columns": ["zip"]}
    csv = b"x1,x2,color,zip\n0.5,1.0,red,1\n"
    refused = client.post(
        f"{url}?extra_columns=error", headers={**headers, "content-type": "text/csv"}, content=csv
    )
    assert refused.status_code == 422 and refused.json()["details"] == {"columns": ["zip"]}

    missing = client.post(url, headers=headers, json={"rows": [{"x1": 0.5}]})
    assert missing.status_code == 422
    assert missing.json()["details"] == {"missing": ["x2", "color"]}

    secret = "secret-4111-1111"
    for body in (
        {"rows": [{**row, "x1": secret}]},
        {"rows": [{**row, "x1": {"card": secret}}]},
        {"dataframe_split": {"columns": ["x1", "x2"], "data": [[secret]]}},
        {"instances": [[secret, 1.0]]},
    ):
        response = client.post(url, headers=headers, json=body)
        assert response.status_code == 422, response.text
        assert secret not in response.text, response.text
    bad_csv = f"x1,x2,color\n{secret},1.0,red\n".encode()
    response = client.post(url, headers={**headers, "content-type": "text/csv"}, content=bad_csv)
    assert response.status_code == 422 and secret not in response.text
    assert "x1" in response.text  # the column is named

    unknown_output = client.post(url, headers=headers, json={"rows": [row], "output": "nope"})
    assert unknown_output.status_code == 422


def test_signature_shows_what_predict_enforces(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = classification_frame(200)
    frame["when"] = pd.date_range("2024-01-01", periods=len(frame), freq="h").astype(str)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    model_id = train_model(client, user, dataset_id, "classification", "label", rounds=3)
    response = client.get(f"/models/{model_id}/signature?max_categories=2", headers=auth(user))
    assert response.status_code == 200, response.text
    signature = response.json()
    inputs = {c["name"]: c for c in signature["inputs"]}
    assert set(inputs) == {"x1", "x2", "color", "when"}
    assert inputs["x1"]["kind"] == "numeric"
    assert inputs["color"]["category_count"] == 3
    assert inputs["color"]["categories"] == ["blue", "green"]  # the first two, sorted
    assert inputs["when"]["kind"] == "datetime" and "hour" in inputs["when"]["parts"]
    assert "when__hour" in inputs["when"]["model_columns"]
    outputs = signature["outputs"]
    assert outputs["classes"] == ["no", "yes"] and "probability" in outputs["choices"]
    # Enforced: a row without a signature column is refused, naming it.
    row = {"x1": 0.5, "x2": 1.0, "color": "red"}
    refused = client.post(f"/models/{model_id}/predict", headers=auth(user), json={"rows": [row]})
    assert refused.status_code == 422 and refused.json()["details"] == {"missing": ["when"]}
