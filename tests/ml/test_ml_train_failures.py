"""Each deterministic training failure has its own error_type; a bad spec is InvalidInput."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.train import InitModel, TrainSpec, train

FAST: dict[str, object] = {"nthread": 1, "max_depth": 2}


def fails(
    df: pd.DataFrame,
    task: Any = "classification",
    *,
    params: dict[str, object] | None = None,
    init: InitModel | None = None,
) -> TrainingFailed:
    spec = TrainSpec(task, "y", ["x"], {**FAST, **(params or {})}, num_boost_round=3)
    with pytest.raises(TrainingFailed) as info:
        train(df, spec, init=init)
    return info.value


def frame(y: list[object], x: list[object] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"x": x if x is not None else np.arange(len(y), dtype=float), "y": y})


def test_empty_target() -> None:
    assert fails(frame([None, None, None])).error_type == "EmptyTarget"


def test_no_rows() -> None:
    empty = pd.DataFrame({"x": pd.Series([], dtype=float), "y": pd.Series([], dtype=float)})
    assert fails(empty).error_type == "NoUsableRows"


def test_single_class() -> None:
    error = fails(frame(["a", "a", None, "a"]))
    assert error.error_type == "SingleClass"
    assert error.details == {"classes": ["a"]}


def test_non_numeric_regression_target() -> None:
    error = fails(frame(["1.5", "abc", "2", "3"]), "regression")
    assert error.error_type == "NonNumericTarget"
    assert error.details == {"examples": ["'abc'"]}
    assert fails(frame([1.0, np.inf, 2.0]), "regression").error_type == "NonNumericTarget"


def test_numeric_strings_are_a_numeric_regression_target() -> None:
    df = frame(["1.5", "2", "3", "4.5", "5"])
    spec = TrainSpec("regression", "y", ["x"], dict(FAST), num_boost_round=2)
    assert train(df, spec).labels is None


def test_too_few_rows() -> None:
    error = fails(frame(["a", None, None]))
    assert error.error_type == "TooFewRows"
    assert error.details == {"rows": 1}


def test_missing_columns() -> None:
    error = fails(pd.DataFrame({"x": [1.0, 2.0]}))
    assert error.error_type == "MissingColumns"
    assert error.details == {"missing": ["y"]}


def test_unusable_feature_values() -> None:
    df = frame([0, 1, 0, 1], x=list(pd.to_timedelta([1, 2, 3, 4], unit="s")))
    error = fails(df)
    assert error.error_type == "InvalidData"
    assert error.details is not None and "x" in error.details["columns"]


def test_xgboost_error_is_trimmed() -> None:
    error = fails(
        frame([-1.0, 2.0, 3.0, 4.0, 5.0]), "regression", params={"objective": "reg:gamma"}
    )
    assert error.error_type == "XGBoostError"
    assert "\n" not in error.message and "Stack trace" not in error.message
    assert not error.message.startswith("[")


def test_binary_objective_with_three_classes() -> None:
    error = fails(frame([1, 2, 3] * 4), params={"objective": "binary:logistic"})
    assert error.error_type == "IncompatibleObjective"


def test_too_many_classes() -> None:
    assert fails(frame(list(np.arange(1200.0) + 0.5))).error_type == "TooManyClasses"


def test_retrain_from_a_model_of_the_other_task() -> None:
    model = train(frame([0, 1] * 5), TrainSpec("classification", "y", ["x"], dict(FAST), 2))
    init = InitModel(model.booster, model.features, model.labels)
    assert fails(frame([0.5] * 6), "regression", init=init).error_type == "IncompatibleModel"
    other = InitModel(model.booster, model.features, None)
    assert fails(frame([0, 1] * 3), init=other).error_type == "IncompatibleModel"


def test_retrain_with_other_features() -> None:
    model = train(frame([0, 1] * 5), TrainSpec("classification", "y", ["x"], dict(FAST), 2))
    df = frame([0, 1] * 3).rename(columns={"x": "z"}).assign(x=1.0)
    init = InitModel(model.booster, [*model.features, *model.features], model.labels)
    assert fails(df, init=init).error_type == "IncompatibleFeatures"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"features": ["x", "y"]}, "features"),
        ({"features": []}, "features"),
        ({"features": ["x", "x"]}, "features"),
        ({"test_size": 1.0}, "test_size"),
        ({"num_boost_round": 0}, "num_boost_round"),
        ({"early_stopping_rounds": 0}, "early_stopping_rounds"),
    ],
)
def test_a_bad_spec_is_invalid_input(change: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {"task_type": "classification", "target": "y", "features": ["x"]}
    with pytest.raises(InvalidInput) as info:
        train(frame([0, 1] * 5), TrainSpec(**{**base, **change}))
    assert info.value.details is not None and field in info.value.details["errors"]


def test_bad_params_are_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        train(frame([0, 1] * 5), TrainSpec("classification", "y", ["x"], {"max_depth": 99}))
    assert info.value.message == "invalid xgb_params"
