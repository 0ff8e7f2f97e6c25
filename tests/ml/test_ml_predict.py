"""Predictions in the user's terms, equal to XGBoost's own DMatrix path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tests.ml.conftest import fit
from xgenerator.errors import InvalidInput
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.predict import predict, rows_to_frame


def reference(bundle: ModelBundle, rows: pd.DataFrame) -> Any:
    matrix = xgb.DMatrix(to_model_frame(rows, bundle.features), enable_categorical=True)
    return bundle.booster.predict(matrix)


@pytest.mark.parametrize("target", ["yes_no", "digit", "truth"])
def test_classification_matches_booster_predict(
    frame: pd.DataFrame, features: list[str], fast_params: Any, target: str
) -> None:
    bundle = fit(frame, target, features, fast_params)
    assert bundle.labels is not None
    out = predict(bundle, frame.iloc[:30])
    expected = reference(bundle, frame.iloc[:30])
    if expected.ndim == 1:
        expected = np.column_stack([1 - expected, expected])
    assert out.probabilities is not None and len(out.probabilities) == 30
    keys = [str(c) for c in bundle.labels.classes]
    got = np.array([[p[k] for k in keys] for p in out.probabilities])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert out.predictions == bundle.labels.decode(expected.argmax(axis=1))
    assert {type(p) for p in out.predictions} == {type(bundle.labels.classes[0])}
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


def test_regression_matches_booster_predict(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle = fit(frame, "value", features, fast_params)
    out = predict(bundle, frame.iloc[:30])
    assert out.probabilities is None
    assert all(type(v) is float for v in out.predictions)
    got = np.array(out.predictions, dtype=np.float64)
    np.testing.assert_allclose(got, reference(bundle, frame.iloc[:30]), rtol=1e-6)


def test_json_rows_unseen_category_and_extra_columns(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle = fit(frame, "yes_no", features, fast_params)
    rows = rows_to_frame(
        [
            {"num": 0.5, "cat": "violet", "flag": True, "count": 2, "other": "ignored"},
            {"num": "0.5", "cat": None, "flag": 1, "count": 2.0},
        ]
    )
    out = predict(bundle, rows)
    assert out.predictions[0] in ("yes", "no")
    assert out.probabilities is not None
    assert out.probabilities[0] == out.probabilities[1]  # unseen category == missing


def test_wrong_type_and_missing_column_are_invalid_input(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle = fit(frame, "digit", features, fast_params)
    with pytest.raises(InvalidInput) as info:
        predict(bundle, rows_to_frame([{"num": "abc", "cat": "red", "flag": True, "count": 1}]))
    assert info.value.details is not None and list(info.value.details["columns"]) == ["num"]
    with pytest.raises(InvalidInput) as info:
        predict(bundle, rows_to_frame([{"num": 1.0, "cat": "red"}]))
    assert info.value.details == {"missing": ["flag", "count"]}


def test_no_rows(frame: pd.DataFrame, features: list[str], fast_params: Any) -> None:
    bundle = fit(frame, "value", features, fast_params)
    out = predict(bundle, frame.iloc[:0])
    assert out.predictions == [] and out.probabilities is None


def test_rows_to_frame_keeps_values_as_given() -> None:
    df = rows_to_frame([{"a": "1", "b": 2}, {"a": 3}])
    assert list(df.columns) == ["a", "b"]
    assert all(df[c].dtype == object for c in df.columns)
    assert df["a"].tolist() == ["1", 3]
    assert df["b"].tolist() == [2, None]
    with pytest.raises(InvalidInput):
        rows_to_frame([{"a": 1}, ["not", "a", "row"]])  # type: ignore[list-item]
