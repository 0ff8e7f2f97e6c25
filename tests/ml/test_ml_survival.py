"""Survival: Harrell's C against a brute-force count, cox and aft models, censoring labels,
and data the worker must refuse (times <= 0, events other than 0/1)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import TrainingFailed
from xgenerator.ml.split import split_indices
from xgenerator.ml.survival import c_index, label_fields
from xgenerator.ml.train import TrainSpec, train

FAST: dict[str, object] = {"nthread": 1, "max_depth": 3, "max_bin": 32}


def brute_force_c(time: Any, event: Any, risk: Any) -> float:
    concordant, comparable = 0.0, 0
    for i in range(len(time)):
        for j in range(len(time)):
            if event[i] == 1 and time[i] < time[j]:
                comparable += 1
                concordant += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return concordant / comparable


def survival_frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    event_time = rng.exponential(np.exp(-x))  # higher x, sooner event
    censor_time = rng.exponential(1.5, size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": z,
            "time": np.minimum(event_time, censor_time),
            "event": (event_time <= censor_time).astype(int),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_index_equals_a_brute_force_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 20, size=150).astype(float)  # ties in time
    event = rng.integers(0, 2, size=150).astype(float)
    risk = rng.integers(0, 10, size=150).astype(float)  # ties in risk
    assert c_index(time, event, risk) == pytest.approx(brute_force_c(time, event, risk))


def test_c_index_extremes() -> None:
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.ones(4)
    assert c_index(time, event, -time) == 1.0
    assert c_index(time, event, time) == 0.0
    assert c_index(time, np.zeros(4), time) is None  # no observed event: nothing comparable


def test_label_fields_encode_censoring() -> None:
    time = np.array([2.0, 3.0])
    event = np.array([1.0, 0.0])
    assert list(label_fields("survival:cox", time, event)["label"]) == [2.0, -3.0]
    aft = label_fields("survival:aft", time, event)
    assert list(aft["label_lower_bound"]) == [2.0, 3.0]
    assert list(aft["label_upper_bound"]) == [2.0, np.inf]


@pytest.mark.parametrize(
    ("params", "own"),
    [
        ({}, "cox-nloglik"),
        ({"objective": "survival:aft"}, "aft-nloglik"),
        (
            {
                "objective": "survival:aft",
                "aft_loss_distribution": "logistic",
                "aft_loss_distribution_scale": 1.2,
            },
            "aft-nloglik",
        ),
    ],
)
def test_survival_models_rank_risk_and_report_c_index(params: dict[str, Any], own: str) -> None:
    frame = survival_frame()
    spec = TrainSpec(
        "survival", "time", ["x", "z"], {**FAST, **params}, num_boost_round=15, event_column="event"
    )
    result = train(frame, spec)
    assert set(result.metrics) == {"c_index", own}
    assert result.params["eval_metric"] == own
    assert f"validation-{own}" in result.history[-1]
    # c_index is that of the model's own predictions on the validation rows
    _, val_idx = split_indices(len(frame), 0.2, 42)
    val = frame.iloc[val_idx]
    pred = result.booster.inplace_predict(val[["x", "z"]].astype(np.float32))
    aft = params.get("objective") == "survival:aft"
    # cox predicts a risk (exp of the margin), aft a time: risk is its opposite
    assert (pred > 0).all()
    risk = -pred if aft else pred
    expected = brute_force_c(val["time"].to_numpy(), val["event"].to_numpy(), risk)
    assert result.metrics["c_index"] == pytest.approx(expected)
    assert (result.metrics["c_index"] or 0) > 0.6
    # the risk grows with x, as the data were built
    low, high = result.booster.inplace_predict(np.array([[-1.5, 0.0], [1.5, 0.0]], np.float32))
    assert (high < low) if aft else (high > low)


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        ({"event": 2}, "InvalidEvent"),
        ({"time": 0.0}, "InvalidSurvivalTime"),
        ({"time": -1.0}, "InvalidSurvivalTime"),
        ({"event": np.nan}, "InvalidEvent"),
    ],
)
def test_bad_survival_data_fails_with_a_clear_error(
    change: dict[str, Any], error_type: str
) -> None:
    frame = survival_frame(100)
    for column, value in change.items():
        frame[column] = frame[column].astype(float)
        frame.loc[5, column] = value
    spec = TrainSpec("survival", "time", ["x", "z"], FAST, num_boost_round=2, event_column="event")
    with pytest.raises(TrainingFailed) as caught:
        train(frame, spec)
    assert caught.value.error_type == error_type
