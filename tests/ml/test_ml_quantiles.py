"""Quantile regression: level checks, one model for every level, rows that never cross,
the [0.1, 0.9] interval's coverage, and the prediction shapes online and in batch."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xgenerator.errors import InvalidInput
from xgenerator.ml.batch import output_columns, predict_parquet
from xgenerator.ml.bundle import ModelBundle, dumps, loads
from xgenerator.ml.params import validate_params
from xgenerator.ml.predict import predict, predict_scores
from xgenerator.ml.quantiles import quantile_metrics
from xgenerator.ml.split import split_indices
from xgenerator.ml.train import TrainResult, TrainSpec, train

ALPHAS = [0.1, 0.5, 0.9]


def noisy(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=n)
    z = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": z, "y": np.sin(x) + x / 2 + rng.normal(size=n)})


@pytest.fixture(scope="module")
def model() -> TrainResult:
    params = {"objective": "reg:quantileerror", "quantile_alpha": [0.9, 0.1, 0.5]}
    spec = TrainSpec(
        "regression",
        "y",
        ["x", "z"],
        {**params, "nthread": 1, "max_depth": 3, "eta": 0.1},
        num_boost_round=120,
    )
    return train(noisy(3000, 0), spec)


def bundle_of(result: TrainResult) -> ModelBundle:
    alphas = result.params["quantile_alpha"]
    assert isinstance(alphas, list)
    return ModelBundle(
        result.booster, "regression", "y", result.features, None, "reg:quantileerror", alphas
    )


@pytest.mark.parametrize("value", [[0.0, 0.5], [0.5, 1.0], [1.5], [], [0.2, 0.2], ["a"], True])
def test_levels_must_be_distinct_and_inside_zero_one(value: object) -> None:
    params = {"objective": "reg:quantileerror", "quantile_alpha": value}
    with pytest.raises(InvalidInput) as caught:
        validate_params(params, "regression")
    assert caught.value.details is not None
    assert "quantile_alpha" in caught.value.details["errors"]


def test_levels_are_sorted_and_need_the_quantile_objective() -> None:
    params = {"objective": "reg:quantileerror", "quantile_alpha": [0.9, 0.1]}
    assert validate_params(params, "regression")["quantile_alpha"] == [0.1, 0.9]
    assert validate_params({"objective": "reg:quantileerror"}, "regression")["quantile_alpha"] == [
        0.5
    ]
    with pytest.raises(InvalidInput):
        validate_params({"quantile_alpha": [0.5]}, "regression")


def test_the_outer_interval_covers_about_eighty_percent_of_held_out_rows(
    model: TrainResult,
) -> None:
    assert model.params["quantile_alpha"] == ALPHAS
    assert model.params["eval_metric"] == "quantile"
    coverage = model.metrics["coverage@0.1-0.9"]
    assert coverage is not None and 0.70 <= coverage <= 0.90
    # and on fresh rows of the same process
    fresh = noisy(2000, 1)
    q = predict_scores(bundle_of(model), fresh)
    inside = ((fresh["y"] >= q[:, 0]) & (fresh["y"] <= q[:, 2])).mean()
    assert 0.70 <= inside <= 0.90


def test_metrics_are_pinball_losses_of_the_sorted_predictions(model: TrainResult) -> None:
    frame = noisy(3000, 0)
    _, val_idx = split_indices(len(frame), 0.2, 42)
    val = frame.iloc[val_idx]
    q = predict_scores(bundle_of(model), val)
    y = val["y"].to_numpy()
    for i, alpha in enumerate(ALPHAS):
        diff = y - q[:, i]
        expected = np.mean(np.where(diff >= 0, alpha * diff, (alpha - 1) * diff))
        assert model.metrics[f"pinball@{alpha:g}"] == pytest.approx(expected)
    assert quantile_metrics(y, q, ALPHAS, np.zeros(len(y)))["pinball@0.1"] is None


def test_rows_never_cross_and_come_keyed_by_level(model: TrainResult) -> None:
    bundle = loads(dumps(bundle_of(model)))
    assert bundle.quantiles == ALPHAS and bundle.objective == "reg:quantileerror"
    rows = noisy(300, 5)
    raw = model.booster.inplace_predict(rows[["x", "z"]].astype(np.float32))
    assert raw.shape == (300, 3)  # one model, every level
    out = predict(bundle, rows)
    assert out.probabilities is None
    first = out.predictions[0]
    assert isinstance(first, dict) and list(first) == ["0.1", "0.5", "0.9"]
    for row in out.predictions:
        assert isinstance(row, dict)
        assert row["0.1"] <= row["0.5"] <= row["0.9"]
    np.testing.assert_allclose(
        [[r[k] for k in ("0.1", "0.5", "0.9")] for r in out.predictions if isinstance(r, dict)],
        np.sort(raw, axis=1),
        rtol=1e-6,
    )


def test_batch_writes_one_column_per_level(model: TrainResult) -> None:
    bundle = bundle_of(model)
    rows = noisy(50, 6)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), buffer)
    buffer.seek(0)
    assert list(output_columns(list(rows.columns), bundle)) == [
        "quantile_0.1",
        "quantile_0.5",
        "quantile_0.9",
    ]
    out = io.BytesIO()
    predict_parquet(bundle, pq.ParquetFile(buffer), out, 20, lambda done, total: None)
    table = pq.read_table(io.BytesIO(out.getvalue())).to_pandas()
    expected = predict_scores(bundle, rows)
    np.testing.assert_allclose(table[["quantile_0.1", "quantile_0.5", "quantile_0.9"]], expected)


def test_the_model_file_keeps_the_role_columns(model: TrainResult) -> None:
    bundle = bundle_of(model)
    bundle.roles = {"weight_column": "w", "rank_k": 10}
    assert loads(dumps(bundle)).roles == {"weight_column": "w", "rank_k": 10}
    bundle.roles = {"owner": "x"}
    with pytest.raises(InvalidInput):
        loads(dumps(bundle))
