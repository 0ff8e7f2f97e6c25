"""Explanations: contributions add up to the margin, date-time parts fold into their column,
importance by dataset column."""

from __future__ import annotations

import io
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb

from tests.ml.conftest import FAST, FEATURES, make_frame
from xgenerator.ml.batch import predict_parquet
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.explain import (
    bias_key,
    contributions,
    explain,
    importance,
    shap_importance,
)
from xgenerator.ml.features import Feature, to_model_frame
from xgenerator.ml.train import TrainSpec, train


def with_dates(n: int = 240) -> pd.DataFrame:
    frame = make_frame(n)
    rng = np.random.default_rng(3)
    stamps = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 400 * 24, size=n), unit="h"
    )
    frame["when"] = stamps
    frame["value"] = frame["value"] + (stamps.month.to_numpy() > 6) * 3.0
    return frame


def fit(frame: pd.DataFrame, task: str, target: str, features: list[str]) -> ModelBundle:
    spec = TrainSpec(
        task_type=task,  # type: ignore[arg-type]
        target=target,
        features=features,
        params=dict(FAST),
        num_boost_round=15,
    )
    result = train(frame, spec)
    return ModelBundle(result.booster, spec.task_type, target, result.features, result.labels)


def margin(bundle: ModelBundle, rows: pd.DataFrame) -> np.ndarray[Any, Any]:
    matrix = xgb.DMatrix(to_model_frame(rows, bundle.features), enable_categorical=True)
    return np.asarray(bundle.booster.predict(matrix, output_margin=True), dtype=np.float64)


CASES = [
    ("classification", "yes_no", FEATURES),
    ("regression", "value", FEATURES),
    ("classification", "digit", FEATURES),
    ("regression", "value", [*FEATURES, "when"]),
]


@pytest.mark.parametrize(("task", "target", "features"), CASES)
def test_contributions_plus_bias_equal_the_margin(
    task: str, target: str, features: list[str]
) -> None:
    frame = with_dates()
    bundle = fit(frame, task, target, features)
    rows = frame.drop(columns=[target]).head(30)
    explained = explain(bundle, rows)
    expected = margin(bundle, rows)
    assert len(explained) == 30
    if target == "digit":  # multi-class: one set per class, keyed by the class label
        assert all(set(row) == {"3", "7", "9"} for row in explained)
        for c, label in enumerate(["3", "7", "9"]):
            sums = [sum(row[label].values()) for row in explained]
            np.testing.assert_allclose(sums, expected[:, c], rtol=1e-4, atol=1e-5)
        assert set(explained[0]["3"]) == {*features, "bias"}
    else:
        assert all(set(row) == {*features, "bias"} for row in explained)
        sums = [sum(row.values()) for row in explained]
        np.testing.assert_allclose(sums, expected, rtol=1e-4, atol=1e-5)


def test_date_time_parts_fold_into_their_column() -> None:
    frame = with_dates()
    bundle = fit(frame, "regression", "value", [*FEATURES, "when"])
    when = next(f for f in bundle.features if f.name == "when")
    assert len(when.columns) > 1
    rows = frame.head(10)
    model_frame = to_model_frame(rows, bundle.features)
    raw = bundle.booster.predict(
        xgb.DMatrix(model_frame, enable_categorical=True), pred_contribs=True
    )
    positions = [list(model_frame.columns).index(c) for c in when.columns]
    folded = contributions(bundle.booster, bundle.features, model_frame)
    np.testing.assert_allclose(folded[:, -2], raw[:, positions].sum(axis=1), rtol=1e-6)
    assert [row["when"] for row in explain(bundle, rows)] == pytest.approx(folded[:, -2])
    # the month really matters here, and shows under the column's own name
    assert np.abs(folded[:, -2]).mean() > 0.1


def test_a_feature_called_bias_keeps_its_name() -> None:
    frame = make_frame().rename(columns={"num": "bias"})
    bundle = fit(frame, "regression", "value", ["bias", "cat"])
    assert bias_key(bundle.features) == "_bias"
    row = explain(bundle, frame.head(1))[0]
    assert set(row) == {"bias", "cat", "_bias"}


def test_shap_importance_ordering_matches_a_direct_computation() -> None:
    frame = with_dates(400)
    bundle = fit(frame, "classification", "digit", [*FEATURES, "when"])
    summary = shap_importance(bundle.booster, bundle.features, frame, max_rows=150, seed=5)
    assert summary["rows"] == 150
    sample = frame.sample(n=150, random_state=5)
    model_frame = to_model_frame(sample, bundle.features)
    raw = bundle.booster.predict(
        xgb.DMatrix(model_frame, enable_categorical=True), pred_contribs=True
    )
    columns = list(model_frame.columns)
    direct = {
        f.name: np.abs(raw[:, :, [columns.index(c) for c in f.columns]].sum(axis=2)).mean()
        for f in bundle.features
    }
    values = summary["values"]
    assert sorted(values, key=values.__getitem__) == sorted(direct, key=direct.__getitem__)
    for name, value in direct.items():
        assert values[name] == pytest.approx(value, rel=1e-5)


def test_split_importance_by_dataset_column() -> None:
    frame = with_dates()
    bundle = fit(frame, "regression", "value", [*FEATURES, "when"])
    booster, features = bundle.booster, bundle.features
    when: Feature = next(f for f in features if f.name == "when")
    raw = {k: booster.get_score(importance_type=k) for k in ("total_gain", "weight")}
    total = importance(booster, features, "total_gain")
    splits = importance(booster, features, "weight")
    assert set(total) == {f.name for f in features}
    expected = sum(float(cast(float, raw["total_gain"].get(c, 0.0))) for c in when.columns)
    assert total["when"] == pytest.approx(expected)
    assert splits["num"] == raw["weight"]["num"]
    gain = importance(booster, features, "gain")
    assert gain["when"] == pytest.approx(total["when"] / splits["when"])
    assert gain["num"] == pytest.approx(booster.get_score(importance_type="gain")["num"])
    with pytest.raises(Exception, match="unknown importance type"):
        importance(booster, features, "shap")


@pytest.mark.parametrize("target", ["yes_no", "digit", "value"])
def test_batch_contribution_columns_equal_online_explanations(target: str) -> None:
    frame = make_frame(120)
    task = "regression" if target == "value" else "classification"
    bundle = fit(frame, task, target, FEATURES)
    source = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source, row_group_size=50)
    source.seek(0)
    out = io.BytesIO()
    predict_parquet(bundle, pq.ParquetFile(source), out, 37, lambda d, t: None, explain=True)
    result = pq.read_table(io.BytesIO(out.getvalue())).to_pandas()
    online = explain(bundle, frame)
    names = [*FEATURES, "bias"]
    assert [f"contribution_{n}" for n in names] == [
        c for c in result.columns if c.startswith("contribution_")
    ]
    if target == "digit":  # the predicted class's contributions
        online = [row[str(p)] for row, p in zip(online, result["prediction"], strict=True)]
    for name in names:
        expected = [row[name] for row in online]
        np.testing.assert_allclose(result[f"contribution_{name}"], expected, rtol=1e-6)


def test_a_big_model_summarizes_fewer_rows() -> None:
    frame = make_frame(400)
    bundle = fit(frame, "classification", "digit", FEATURES)  # 15 rounds x 3 classes
    full = shap_importance(bundle.booster, bundle.features, frame)
    assert full["rows"] == 400
    capped = shap_importance(bundle.booster, bundle.features, frame, max_tree_rows=45 * 150)
    assert capped["rows"] == 150
    floor = shap_importance(bundle.booster, bundle.features, frame, max_tree_rows=45)
    assert floor["rows"] == 100  # never fewer than SHAP_MIN_ROWS
