"""Sample weights: zero weights remove rows' influence, metrics are weighted, the weight
column is never a feature, and bad weights fail with a clear error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.split import split_indices
from xgenerator.ml.train import TrainSpec, train

FAST: dict[str, object] = {"nthread": 1, "max_depth": 3, "max_bin": 32}


def weighted(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    weight = np.where(np.arange(n) % 4 == 0, 0.0, rng.uniform(0.5, 2.0, size=n))
    return pd.DataFrame(
        {"x": x, "z": z, "y": 2 * x + z + rng.normal(scale=0.1, size=n), "w": weight}
    )


def fit(frame: pd.DataFrame, **kw: Any) -> Any:
    spec = TrainSpec("regression", "y", ["x", "z"], FAST, num_boost_round=20, **kw)
    return train(frame, spec)


def test_zero_weights_remove_rows_influence() -> None:
    frame = weighted()
    zero = frame["w"] == 0
    contradicting = frame.copy()
    contradicting.loc[zero, "y"] = -10 * contradicting.loc[zero, "x"] + 50  # the wrong story
    grid = np.column_stack([np.linspace(-2, 2, 50), np.zeros(50)]).astype(np.float32)

    clean = fit(frame, weight_column="w")
    polluted = fit(contradicting, weight_column="w")
    np.testing.assert_allclose(
        clean.booster.inplace_predict(grid), polluted.booster.inplace_predict(grid), rtol=1e-5
    )
    assert clean.metrics == pytest.approx(polluted.metrics)
    # without the weights the contradicting rows do change the model: the test means something
    unweighted = fit(contradicting)
    assert not np.allclose(
        clean.booster.inplace_predict(grid), unweighted.booster.inplace_predict(grid), rtol=1e-2
    )


def test_metrics_are_weighted_on_the_validation_rows() -> None:
    frame = weighted()
    result = fit(frame, weight_column="w")
    _, val_idx = split_indices(len(frame), 0.2, 42)
    val = frame.iloc[val_idx]
    pred = result.booster.inplace_predict(val[["x", "z"]].astype(np.float32))
    w = val["w"].to_numpy()
    expected = skm.root_mean_squared_error(val["y"], pred, sample_weight=w)
    assert result.metrics["rmse"] == pytest.approx(expected)
    assert result.metrics["rmse"] != pytest.approx(skm.root_mean_squared_error(val["y"], pred))


def test_weighted_classification_metrics() -> None:
    frame = weighted().assign(label=lambda f: f["y"] > 0)
    spec = TrainSpec(
        "classification", "label", ["x", "z"], FAST, num_boost_round=5, weight_column="w"
    )
    result = train(frame, spec)
    assert result.labels is not None
    codes = result.labels.encode(frame["label"]).astype(np.int64)
    _, val_idx = split_indices(len(frame), 0.2, 42, codes)
    val = frame.iloc[val_idx]
    proba = result.booster.inplace_predict(val[["x", "z"]].astype(np.float32))
    w = val["w"].to_numpy()
    assert result.metrics["logloss"] == pytest.approx(
        skm.log_loss(val["label"], proba, sample_weight=w)
    )


def test_the_weight_column_is_reported_not_used() -> None:
    frame = weighted()
    result = fit(frame, weight_column="w")
    assert [f.name for f in result.features] == ["x", "z"]
    assert {"name": "w", "reason": "role", "detail": "used as weight_column"} in [
        e.to_dict() for e in result.excluded
    ]
    with pytest.raises(InvalidInput):
        train(frame, TrainSpec("regression", "y", ["x", "w"], FAST, weight_column="w"))


@pytest.mark.parametrize(
    ("value", "error_type"), [(-1.0, "InvalidWeight"), (np.nan, "InvalidWeight")]
)
def test_bad_weights_fail_with_a_clear_error(value: float, error_type: str) -> None:
    frame = weighted()
    frame.loc[3, "w"] = value
    with pytest.raises(TrainingFailed) as caught:
        fit(frame, weight_column="w")
    assert caught.value.error_type == error_type
    frame["w"] = 0.0
    with pytest.raises(TrainingFailed):
        fit(frame, weight_column="w")
