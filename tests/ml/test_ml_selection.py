"""The columns training leaves out on its own, each with its reason, and the rows it drops."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import TrainingFailed
from xgenerator.ml.prepare import fresh_encoding
from xgenerator.ml.selection import screen
from xgenerator.ml.train import InitModel, TrainSpec, train

N = 200


def candidates() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=N)
    return pd.DataFrame(
        {
            "x": x,  # floats, distinct on every row: a measurement, not an identifier
            "customer": [f"c{i:04d}" for i in range(N)],  # text identifier
            "row_id": np.arange(N, dtype=np.int64) * 7,  # integer identifier
            "near_id": [f"n{i}" if i % 30 else "n0" for i in range(N)],  # 96 % distinct
            "country": rng.choice(["fr", "de", "it"], size=N),
            "same": ["one"] * N,
            "flag": [True] * N,
            "level": [2.5 if i % 3 else np.nan for i in range(N)],  # one float, some missing
            "nothing": pd.Series([None] * N, dtype=object),
            "zip": [f"z{i % 120}" for i in range(N)],  # 120 levels
            "when": pd.date_range("2024-01-01", periods=N, freq="h"),  # distinct; kept
            "y": np.where(x + rng.normal(scale=0.3, size=N) > 0, "a", "b"),
        }
    )


def reasons(excluded: list[Any]) -> dict[str, str]:
    return {e.name: e.reason for e in excluded}


def test_each_rule_and_its_reason() -> None:
    df = candidates()
    names = [c for c in df.columns if c != "y"]
    kept, excluded = screen(df, names, forced=False, max_category_levels=100)
    assert reasons(excluded) == {
        "customer": "unique_per_row",
        "row_id": "unique_per_row",
        "near_id": "unique_per_row",
        "same": "constant",
        "flag": "constant",
        "level": "constant",
        "nothing": "all_missing",
        "zip": "too_many_levels",
    }
    assert kept == ["x", "country", "when"]
    detail = {e.name: e.detail for e in excluded}
    assert detail["customer"] == "200 distinct values in 200 rows: an identifier"
    assert detail["zip"] == "120 distinct values, over the limit of 100"
    assert detail["level"] == "the single value '2.5' in 133 rows"
    # no bound on levels: the 120-level column is kept
    kept, _ = screen(df, names, forced=False, max_category_levels=None)
    assert "zip" in kept


def test_small_data_has_no_identifiers() -> None:
    df = candidates().head(40)  # under MIN_ID_ROWS: a distinct value per row proves nothing
    kept, excluded = screen(df, ["customer", "row_id"], forced=False, max_category_levels=None)
    assert kept == ["customer", "row_id"] and excluded == []


def test_named_columns_are_used_unless_they_hold_nothing() -> None:
    df = candidates()
    names = ["customer", "row_id", "same", "zip", "nothing"]
    kept, excluded = screen(df, names, forced=True, max_category_levels=100)
    assert kept == ["customer", "row_id", "same", "zip"]
    assert reasons(excluded) == {"nothing": "all_missing"}


def test_training_reports_what_it_left_out() -> None:
    df = candidates()
    df.loc[df.index[:7], "y"] = None
    features = [c for c in df.columns if c != "y"]
    spec = TrainSpec(
        "classification", "y", features, {"nthread": 1}, num_boost_round=3, max_category_levels=100
    )
    result = train(df, spec)
    assert [f.name for f in result.features] == ["x", "country", "when"]
    assert result.booster.feature_names is not None
    assert result.booster.feature_names[:2] == ["x", "country"]
    assert reasons(result.excluded)["customer"] == "unique_per_row"
    assert result.dropped_rows == {"missing_target": 7}
    assert result.train_rows + result.validation_rows == N - 7

    forced = train(
        df,
        TrainSpec(
            "classification", "y", ["customer", "x"], num_boost_round=3, features_forced=True
        ),
    )
    assert [f.name for f in forced.features] == ["customer", "x"]
    assert forced.excluded == []


def test_nothing_left_is_a_training_failure() -> None:
    df = candidates()
    with pytest.raises(TrainingFailed) as info:
        train(df, TrainSpec("classification", "y", ["customer", "same"]))
    assert info.value.error_type == "NoFeatures"
    assert info.value.details is not None
    assert [e["name"] for e in info.value.details["excluded_features"]] == ["customer", "same"]


def test_a_resumed_training_reports_the_same_exclusions() -> None:
    df = candidates()
    features = [c for c in df.columns if c != "y"]
    spec = TrainSpec("classification", "y", features, {"nthread": 1}, num_boost_round=4)
    first = train(df, spec)
    partial = first.booster[:2]  # as a checkpoint after round 2 holds it, without metadata
    encoding = fresh_encoding(df, spec)
    init = InitModel(partial, encoding.features, encoding.labels, 2, encoding.excluded)
    resumed = train(df, spec, init=init)
    assert resumed.excluded == first.excluded and resumed.features == first.features
    assert resumed.num_boost_round == 4
