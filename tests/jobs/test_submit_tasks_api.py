"""Submission checks of the ranking, survival, weight, quantile and constraint fields: each
mistake is a 422 in the one error shape naming the field, and no job row is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.support import auth, create_user, upload
from tests.support.jobs import job_count
from xgenerator.context import Context
from xgenerator.jobs.kinds.train_checks import column_ranges


def task_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "color": rng.choice(["red", "blue"], size=n),
            "when": pd.date_range("2024-01-01", periods=n, freq="D").astype(str),
            "w": rng.uniform(0.5, 2, size=n),
            "q": [f"q{i % 6}" for i in range(n)],
            "t": rng.uniform(1, 10, size=n),
            "e": rng.integers(0, 2, size=n),
            "e_text": rng.choice(["yes", "no"], size=n),
            "y": rng.normal(size=n),
            "label": rng.choice(["a", "b"], size=n),
            "w_neg": np.r_[-1.0, rng.uniform(0.5, 2, size=n - 1)],
            "e_two": np.r_[2, rng.integers(0, 2, size=n - 1)],
            "t_zero": np.r_[0.0, rng.uniform(1, 10, size=n - 1)],
        }
    )


def body(dataset_id: str, task_type: str = "regression", **extra: Any) -> dict[str, Any]:
    target = {"classification": "label", "survival": "t"}.get(task_type, "y")
    return {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": task_type,
        "target": target,
        "num_boost_round": 5,
        **extra,
    }


QUANTILE = {"objective": "reg:quantileerror"}

BAD: dict[str, tuple[dict[str, Any], str]] = {
    "ranking without group_column": ({"task_type": "ranking"}, "group_column"),
    "survival without event_column": ({"task_type": "survival"}, "event_column"),
    "group_column outside ranking": ({"group_column": "q"}, "group_column"),
    "event_column outside survival": ({"event_column": "e"}, "event_column"),
    "unknown weight column": ({"weight_column": "nope"}, "weight_column"),
    "unknown group column": ({"task_type": "ranking", "group_column": "nope"}, "group_column"),
    "weight column is the target": ({"weight_column": "y"}, "weight_column"),
    "weight column is also a feature": (
        {"weight_column": "w", "features": ["x", "w"]},
        "weight_column",
    ),
    "group column is also a feature": (
        {"task_type": "ranking", "group_column": "q", "features": ["x", "q"]},
        "group_column",
    ),
    "event column is the target": (
        {"task_type": "survival", "event_column": "t"},
        "event_column",
    ),
    "weight column not numeric": ({"weight_column": "color"}, "weight_column"),
    "event column not numeric": (
        {"task_type": "survival", "event_column": "e_text"},
        "event_column",
    ),
    "one column in two roles": (
        {"task_type": "survival", "event_column": "e", "weight_column": "e"},
        "already used by another role",
    ),
    "negative weights (from the file's statistics)": ({"weight_column": "w_neg"}, "negative"),
    "event value 2 (from the file's statistics)": (
        {"task_type": "survival", "event_column": "e_two"},
        "must be 0 or 1",
    ),
    "survival time 0 (from the file's statistics)": (
        {"task_type": "survival", "event_column": "e", "target": "t_zero"},
        "must be > 0",
    ),
    "weights with ranking": (
        {"task_type": "ranking", "group_column": "q", "weight_column": "w"},
        "weight_column",
    ),
    "ranking target not numeric": (
        {"task_type": "ranking", "group_column": "q", "target": "label"},
        "column",
    ),
    "rank_k out of range": ({"task_type": "ranking", "group_column": "q", "rank_k": 0}, "rank_k"),
    "ranking objective on regression": ({"xgb_params": {"objective": "rank:ndcg"}}, "objective"),
    "survival objective on ranking": (
        {"task_type": "ranking", "group_column": "q", "xgb_params": {"objective": "survival:cox"}},
        "objective",
    ),
    "quantile level 0": ({"xgb_params": {**QUANTILE, "quantile_alpha": [0.0, 0.5]}}, "quantile"),
    "quantile level 1.2": ({"xgb_params": {**QUANTILE, "quantile_alpha": [0.5, 1.2]}}, "quantile"),
    "quantile levels without the objective": (
        {"xgb_params": {"quantile_alpha": [0.1, 0.9]}},
        "quantile_alpha",
    ),
    "aft distribution with cox": (
        {
            "task_type": "survival",
            "event_column": "e",
            "xgb_params": {"aft_loss_distribution": "normal"},
        },
        "aft_loss_distribution",
    ),
    "aft distribution unknown": (
        {
            "task_type": "survival",
            "event_column": "e",
            "xgb_params": {"objective": "survival:aft", "aft_loss_distribution": "cauchy"},
        },
        "aft_loss_distribution",
    ),
    "monotone on an unknown column": (
        {"xgb_params": {"monotone_constraints": {"nope": 1}}},
        "nope",
    ),
    "monotone on a categorical column": (
        {"xgb_params": {"monotone_constraints": {"color": 1}}},
        "color",
    ),
    "monotone on a date-time column": (
        {"xgb_params": {"monotone_constraints": {"when": 1}}},
        "when",
    ),
    "monotone on the weight column": (
        {"weight_column": "w", "xgb_params": {"monotone_constraints": {"w": 1}}},
        "w",
    ),
    "monotone with quantile regression": (
        {"xgb_params": {**QUANTILE, "monotone_constraints": {"x": 1}}},
        "monotone_constraints",
    ),
    "monotone direction 2": ({"xgb_params": {"monotone_constraints": {"x": 2}}}, "monotone"),
    "interaction with a categorical column": (
        {"xgb_params": {"interaction_constraints": [["x", "color"]]}},
        "color",
    ),
    "interaction by position": (
        {"xgb_params": {"interaction_constraints": [[0, 1]]}},
        "interaction_constraints",
    ),
}


@pytest.fixture
def dataset(client: TestClient) -> tuple[dict[str, str], str]:
    user = create_user(client)
    return user, upload(client, user, task_frame()).json()["dataset_id"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_task_fields_are_422_and_create_no_job(
    client: TestClient, context: Context, dataset: tuple[dict[str, str], str], case: str
) -> None:
    user, dataset_id = dataset
    extra, named = BAD[case]
    response = client.post("/train", headers=auth(user), json=body(dataset_id, **extra))
    assert response.status_code == 422, response.text
    answer = response.json()
    assert set(answer) == {"error", "message", "details"}
    assert named in response.text, answer
    assert job_count(context) == 0


def test_good_task_fields_are_accepted_with_role_columns_left_out_of_the_features(
    client: TestClient, dataset: tuple[dict[str, str], str]
) -> None:
    user, dataset_id = dataset
    good = [
        body(dataset_id, weight_column="w", exclude_features=["t", "e", "e_text", "q"]),
        body(dataset_id, "ranking", group_column="q", rank_k=3, exclude_features=["label"]),
        body(dataset_id, "survival", event_column="e", xgb_params={"objective": "survival:aft"}),
        body(dataset_id, xgb_params={**QUANTILE, "quantile_alpha": [0.9, 0.1]}),
        body(
            dataset_id,
            xgb_params={"monotone_constraints": {"x": -1}, "interaction_constraints": [["x", "z"]]},
        ),
    ]
    configs = []
    for request in good:
        response = client.post("/train", headers=auth(user), json=request)
        assert response.status_code == 202, (request, response.text)
        job = client.get(f"/jobs/{response.json()['job_id']}", headers=auth(user)).json()
        configs.append(job["config"])
    assert "w" not in configs[0]["features"] and configs[0]["weight_column"] == "w"
    assert "q" not in configs[1]["features"] and configs[1]["rank_k"] == 3
    assert "e" not in configs[2]["features"] and "t" not in configs[2]["features"]
    assert configs[3]["xgb_params"]["quantile_alpha"] == [0.1, 0.9]
    assert configs[4]["xgb_params"]["monotone_constraints"] == {"x": -1}


def test_column_ranges_span_every_row_group_and_skip_unknown_ones(tmp_path: Path) -> None:
    table = pa.table(
        {
            "w": pa.array([1.0, 2.0, None, None, -3.0, 4.0]),
            "flag": pa.array([True, False, True, True, False, True]),
            "text": pa.array(list("abcdef")),
        }
    )
    path = tmp_path / "f.parquet"
    pq.write_table(table, path, row_group_size=2)  # the middle group: w only nulls
    assert column_ranges(pq.ParquetFile(path), ["w", "flag", "text", "nope"]) == {
        "w": (-3.0, 4.0),
        "flag": (0.0, 1.0),
    }
    pq.write_table(table, path, write_statistics=False)
    assert column_ranges(pq.ParquetFile(path), ["w"]) == {}
