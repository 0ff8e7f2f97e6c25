"""The DataFrame-free path gives the frame path's numbers, and steps aside when it cannot."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tests.ml.conftest import fit
from xgenerator.errors import InvalidInput
from xgenerator.ml.fastpath import records_to_array
from xgenerator.ml.features import Feature
from xgenerator.ml.predict import (
    _predict_dense,
    predict,
    predict_records,
    rows_to_frame,
    use_threads,
)


def _json_rows(frame: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    rows = frame[features].astype(object).where(frame[features].notna(), None)
    return [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]


@pytest.mark.parametrize("target", ["yes_no", "digit", "value"])
def test_fast_path_equals_frame_path(
    frame: pd.DataFrame, features: list[str], fast_params: Any, target: str
) -> None:
    bundle = fit(frame, target, features, fast_params)
    rows = _json_rows(frame.iloc[:60], features)
    # Values of every JSON shape: an unseen category, a number where a category was a string,
    # a key absent from a row, an extra key, a boolean and an int where floats trained.
    rows[0]["cat"], rows[1]["cat"] = "purple", 3
    del rows[2]["num"]
    rows[3]["extra"] = "x"
    rows[4]["num"] = 2
    assert records_to_array(rows, bundle.features) is not None  # the fast path is taken
    fast = predict_records(bundle, rows)
    slow = predict(bundle, rows_to_frame(rows, features))
    if target == "value":
        np.testing.assert_allclose(
            np.array(fast.predictions, dtype=float), np.array(slow.predictions, dtype=float)
        )
    else:
        assert fast.predictions == slow.predictions
        assert fast.probabilities is not None and slow.probabilities is not None
        got = [list(p.values()) for p in fast.probabilities]
        want = [list(p.values()) for p in slow.probabilities]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_the_general_path_takes_what_the_fast_one_cannot() -> None:
    numeric = [Feature("n", "numeric")]
    assert records_to_array([{"n": "1.5"}], numeric) is None  # a string: pandas coerces it
    assert records_to_array([{"n": 1e300}], numeric) is None  # past float32: refused there
    assert records_to_array([{"n": 10**400}], numeric) is None
    assert records_to_array([{"m": 1.0}], numeric) is None  # missing column: a 422 there
    when = [Feature("w", "datetime", parts=["epoch"])]
    assert records_to_array([{"w": "2024-01-01"}], when) is None
    coded = records_to_array(
        [{"c": "b"}, {"c": None}, {"c": "z"}, {"c": 1.0}], [Feature("c", "categorical", ["1", "b"])]
    )
    assert coded is not None
    np.testing.assert_array_equal(coded[:, 0], [1.0, np.nan, np.nan, 0.0])


def test_bad_values_give_the_frame_paths_errors(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle = fit(frame, "value", features, fast_params)
    row = _json_rows(frame.iloc[:1], features)[0]
    with pytest.raises(InvalidInput) as info:
        predict_records(bundle, [{**row, "num": "abc"}])
    assert info.value.details is not None and "num" in info.value.details["columns"]
    with pytest.raises(InvalidInput, match="missing feature columns"):
        predict_records(bundle, [{"num": 1.0}])


@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob", "reg:quantileerror"])
def test_the_dense_call_answers_what_inplace_predict_answers(objective: str) -> None:
    """Bit for bit, for one row and many, one output per row or several, from two threads
    (each its own proxy) with different thread counts; a wrong width is XGBoost's error."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 6)).astype(np.float32)
    x[rng.random(size=x.shape) < 0.1] = np.nan
    params: dict[str, Any] = {"objective": objective, "nthread": 1, "max_depth": 3}
    label = (x[:, 0] > 0).astype(float)
    if objective == "multi:softprob":
        params["num_class"], label = 3, np.digitize(np.nan_to_num(x[:, 0]), [-0.5, 0.5])
    if objective == "reg:quantileerror":
        params["quantile_alpha"], label = np.array([0.1, 0.5, 0.9]), np.nan_to_num(x[:, 0])
    booster = xgb.train(params, xgb.DMatrix(x, label), 10)
    booster = xgb.Booster(model_file=booster.save_raw("ubj"))  # as loaded: no nthread param
    answers: dict[int, list[np.ndarray[Any, Any]]] = {}

    def run(threads: int) -> None:
        use_threads(threads)
        answers[threads] = [_predict_dense(booster, x[:n].copy()) for n in (1, 7, 500)]

    workers = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for got in answers.values():
        for n, answer in zip((1, 7, 500), got, strict=True):
            expected = booster.inplace_predict(x[:n])
            assert answer.dtype == expected.dtype and answer.shape == expected.shape
            np.testing.assert_array_equal(answer, expected)
    with pytest.raises(xgb.core.XGBoostError):
        _predict_dense(booster, np.zeros((1, 5), dtype=np.float32))
