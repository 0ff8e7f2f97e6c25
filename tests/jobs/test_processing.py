"""Dataset processing jobs end to end with a real worker (both databases), and the 422s
that must come before any job exists."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, create_user, upload
from tests.support.jobs import artifact, counts, finished, parquet_frame, train_model
from xgenerator.context import Context


def process_frame(rows: int = 400, seed: int = 5) -> pd.DataFrame:
    """Numbers with nulls, integers, a category, a flag, and 4 planted outliers in (u, v)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(10, 3, rows),
            "b": rng.integers(0, 100, rows),
            "c": rng.choice(["red", "green", "blue"], rows, p=[0.6, 0.3, 0.1]),
            "flag": rng.random(rows) > 0.5,
            "u": rng.normal(size=rows),
            "v": rng.normal(size=rows),
        }
    )
    frame.loc[::9, "a"] = np.nan
    frame.loc[200:203, ["u", "v"]] = [[9.0, 9.0], [-9.0, 8.0], [10.0, -9.0], [0.0, 12.0]]
    return frame


def submit(client: TestClient, user: dict[str, str], dataset_id: str, body: dict[str, Any]) -> str:
    response = client.post(f"/datasets/{dataset_id}/process", headers=auth(user), json=body)
    assert response.status_code == 202, response.text
    assert response.json()["job_type"] == "process"
    job_id: str = response.json()["job_id"]
    return job_id


def test_profile_normalize_and_anomalies(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = process_frame()
    dataset_id = upload(client, user, frame, name="measures").json()["dataset_id"]
    profile_id = submit(client, user, dataset_id, {"operation": "profile", "options": {"top_k": 2}})
    normalize_id = submit(
        client,
        user,
        dataset_id,
        {"operation": "normalize", "options": {"method": "zscore", "columns": ["a", "b"]}},
    )
    anomalies_id = submit(
        client,
        user,
        dataset_id,
        {"operation": "anomalies", "options": {"contamination": 0.01, "columns": ["u", "v"]}},
    )

    # profile: every number as pandas computes it on the same data
    result = finished(client, user, profile_id)
    assert result["job_type"] == "process"
    profile = result["result"]["profile"]
    columns = {c["name"]: c for c in profile["columns"]}
    assert list(columns) == list(frame.columns) and profile["rows"] == len(frame)
    a = columns["a"]
    assert (a["count"], a["nulls"], a["distinct"]) == (
        frame["a"].count(),
        frame["a"].isna().sum(),
        frame["a"].nunique(),
    )
    for stat in ("min", "max", "mean", "std"):
        assert a[stat] == pytest.approx(getattr(frame["a"], stat)()), stat
    assert a["quantiles"]["0.25"] == pytest.approx(frame["a"].quantile(0.25))
    assert columns["b"]["mean"] == pytest.approx(frame["b"].mean())
    top = frame["c"].value_counts().head(2)
    assert [(t["value"], t["count"]) for t in columns["c"]["top_values"]] == list(top.items())
    expected_corr = frame[["a", "b", "u", "v"]].corr()
    assert profile["correlations"]["a"]["u"] == pytest.approx(expected_corr.at["a", "u"])
    assert json.loads(artifact(client, user, result, "profile.json")) == profile

    # normalize: a new dataset, registered, downloadable, usable for training
    result = finished(client, user, normalize_id)
    params = result["result"]["params"]
    assert params["a"] == {
        "mean": pytest.approx(frame["a"].mean()),
        "std": pytest.approx(frame["a"].std()),
    }
    normalized = parquet_frame(artifact(client, user, result, "normalized.parquet"))
    for col in ("a", "b"):
        expected = (frame[col] - frame[col].mean()) / frame[col].std()
        np.testing.assert_allclose(normalized[col], expected, rtol=1e-9, atol=1e-12)
    assert normalized["c"].tolist() == frame["c"].tolist()
    new_id = result["result"]["dataset_id"]
    dataset = client.get(f"/datasets/{new_id}", headers=auth(user)).json()
    assert dataset["row_count"] == len(frame)
    assert dataset["source_job_id"] == normalize_id
    assert dataset["dataset_name"] == "measures (normalized)"
    train_model(client, user, new_id, "classification", "c", rounds=3)

    # anomalies: the planted outliers are flagged
    result = finished(client, user, anomalies_id)
    summary = result["result"]["summary"]
    flagged = parquet_frame(artifact(client, user, result, "anomalies.parquet"))
    assert list(flagged.columns) == [*frame.columns, "is_anomaly", "anomaly_score"]
    anomalous = set(flagged.index[flagged["is_anomaly"]])
    assert {200, 201, 202, 203} <= anomalous and len(anomalous) <= 8
    assert summary["anomalies"] == len(anomalous)
    assert {r["row"] for r in summary["top_anomalies"][:4]} == {200, 201, 202, 203}
    assert client.get(f"/datasets/{result['result']['dataset_id']}", headers=auth(user)).json()[
        "row_count"
    ] == len(frame)

    listed = client.get("/jobs", headers=auth(user), params={"job_type": "process"}).json()
    assert listed["total"] == 3
    detail = client.get(f"/jobs/{anomalies_id}", headers=auth(user)).json()
    assert detail["config"]["options"]["columns"] == ["u", "v"]

    bob = create_user(client, "bob")
    assert (
        client.post(
            f"/datasets/{dataset_id}/process", headers=auth(bob), json={"operation": "profile"}
        ).status_code
        == 404
    )
    assert client.get(f"/jobs/{profile_id}/result", headers=auth(bob)).status_code == 404
    assert (
        client.get(f"/jobs/{profile_id}/artifacts/profile.json", headers=auth(bob)).status_code
        == 404
    )


def test_bad_processing_requests_are_422_and_create_no_job(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    frame = process_frame(50).assign(is_anomaly=False)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    text_only = upload(client, user, pd.DataFrame({"t": ["x", "y"]})).json()["dataset_id"]
    before = counts(context)
    bad: list[tuple[str, dict[str, Any], str]] = [
        (dataset_id, {"operation": "cluster"}, "operation"),
        (dataset_id, {}, "operation"),
        (dataset_id, {"operation": "profile", "options": {"bins": 3}}, "bins"),
        (dataset_id, {"operation": "profile", "options": {"top_k": 0}}, "top_k"),
        (dataset_id, {"operation": "normalize", "options": {"method": "log"}}, "method"),
        (
            dataset_id,
            {"operation": "normalize", "options": {"contamination": 0.1}},
            "contamination",
        ),
        (
            dataset_id,
            {"operation": "anomalies", "options": {"contamination": 0.9}},
            "contamination",
        ),
        (
            dataset_id,
            {"operation": "anomalies", "options": {"contamination": "lots"}},
            "contamination",
        ),
        (dataset_id, {"operation": "profile", "extra": 1}, "extra"),
        (dataset_id, {"operation": "profile", "options": {"columns": ["nope"]}}, "nope"),
        (dataset_id, {"operation": "normalize", "options": {"columns": ["c"]}}, "c"),
        (dataset_id, {"operation": "normalize", "options": {"columns": ["a", "a"]}}, "twice"),
        (dataset_id, {"operation": "anomalies", "options": {"columns": ["u"]}}, "is_anomaly"),
        (text_only, {"operation": "normalize"}, "numeric"),
    ]
    for target, body, mentioned in bad:
        response = client.post(f"/datasets/{target}/process", headers=auth(user), json=body)
        assert response.status_code == 422, (body, response.text)
        assert mentioned in response.text, (body, response.text)
    missing = client.post(
        "/datasets/nope/process", headers=auth(user), json={"operation": "profile"}
    )
    assert missing.status_code == 404 and missing.json()["error"] == "dataset_not_found"
    assert counts(context) == before
