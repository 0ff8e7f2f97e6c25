"""DataFrame -> model frame, identical between training and prediction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import InvalidInput
from xgenerator.ml.features import Feature, category_str, infer_features, to_model_frame


def test_infer_kinds_and_frozen_categories() -> None:
    df = pd.DataFrame(
        {
            "f": [1.5, np.nan, 2.0],
            "i": [1, 2, 3],
            "b": [True, False, True],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "s": ["b", None, "a"],
            "o": pd.Series(["x", 1, None], dtype=object),
            "c": pd.Categorical([3, 1, 3]),
            "on": pd.Series([1, None, 2.5], dtype=object),
            "empty": pd.Series([None, None, None], dtype=object),
        }
    )
    features = {f.name: f for f in infer_features(df, list(df.columns))}
    kinds = {name: f.kind for name, f in features.items()}
    assert kinds == {
        "f": "numeric",
        "i": "numeric",
        "b": "numeric",
        "n": "numeric",
        "s": "categorical",
        "o": "categorical",
        "c": "categorical",
        "on": "numeric",  # numbers in an object column are still numbers
        "empty": "numeric",  # no categories to freeze
    }
    assert features["s"].categories == ["a", "b"]
    assert features["o"].categories == ["1", "x"]
    assert features["c"].categories == ["1", "3"]


def test_timedelta_columns_are_refused() -> None:
    df = pd.DataFrame({"took": pd.to_timedelta(["1s", "2s"]), "x": [1, 2]})
    with pytest.raises(InvalidInput) as info:
        infer_features(df, ["took", "x"])
    assert info.value.details is not None
    assert list(info.value.details["columns"]) == ["took"]


def test_model_frame_types_order_and_missing_values() -> None:
    df = pd.DataFrame(
        {"s": ["b", None, "a"], "extra": [0, 0, 0], "b": [True, False, True], "f": [1.0, None, 3]}
    )
    features = infer_features(df, ["f", "s", "b"])
    frame = to_model_frame(df, features)
    assert list(frame.columns) == ["f", "s", "b"]
    assert frame["f"].dtype == np.float32 and frame["b"].dtype == np.float32
    assert frame["b"].tolist() == [1.0, 0.0, 1.0]
    assert np.isnan(frame["f"].iloc[1])
    assert frame["s"].dtype == "category"
    assert frame["s"].cat.codes.tolist() == [1, -1, 0]


def test_codes_are_identical_between_training_and_prediction() -> None:
    train = pd.DataFrame({"s": ["red", "green", "blue", "green"]})
    features = infer_features(train, ["s"])
    later = pd.DataFrame({"s": pd.Series(["blue", "purple", "red", None], dtype=object)})
    codes = to_model_frame(later, features)["s"].cat.codes.tolist()
    # categories are sorted: blue=0, green=1, red=2; unseen "purple" becomes missing
    assert codes == [0, -1, 2, -1]
    assert list(to_model_frame(later, features)["s"].cat.categories) == ["blue", "green", "red"]


def test_numbers_in_a_categorical_column_match_their_training_strings() -> None:
    features = infer_features(pd.DataFrame({"c": pd.Categorical([1, 2, None])}), ["c"])
    assert features[0].categories == ["1", "2"]
    later = pd.DataFrame({"c": pd.Series([2, "1", 2.0], dtype=object)})
    assert to_model_frame(later, features)["c"].cat.codes.tolist() == [1, 0, 1]
    assert category_str(np.int64(3)) == category_str(3.0) == "3"
    assert category_str(2.5) == "2.5"


def test_missing_columns_are_named() -> None:
    features = [Feature("a", "numeric"), Feature("b", "categorical", ["x"])]
    with pytest.raises(InvalidInput) as info:
        to_model_frame(pd.DataFrame({"c": [1]}), features)
    assert info.value.message == "missing feature columns"
    assert info.value.details == {"missing": ["a", "b"]}


def test_a_50k_level_column_codes_10k_rows_correctly() -> None:
    levels = [f"id{i:05d}" for i in range(50_000)]
    feature = Feature("c", "categorical", levels)  # already sorted, as training freezes them
    picks = np.random.default_rng(0).integers(0, 50_000, size=10_000)
    values = pd.Series([levels[i] for i in picks] + ["unseen", None], dtype=object)
    codes = to_model_frame(pd.DataFrame({"c": values}), [feature])["c"].cat.codes.to_numpy()
    np.testing.assert_array_equal(codes[:-2], picks)
    assert codes[-2:].tolist() == [-1, -1]


def test_values_that_are_not_numbers_are_refused_by_column() -> None:
    features = [Feature("a", "numeric"), Feature("b", "numeric"), Feature("c", "numeric")]
    rows = pd.DataFrame(
        {
            "a": pd.Series(["1.5", 2, True, None], dtype=object),
            "b": pd.Series(["abc", 1, 2, 3], dtype=object),
            "c": [1.0, 2.0, 1e300, 4.0],
        }
    )
    with pytest.raises(InvalidInput) as info:
        to_model_frame(rows, features)
    assert info.value.details is not None
    columns = info.value.details["columns"]
    assert set(columns) == {"b", "c"}
    # The column and the rows at fault, never the value (a request may be personal data).
    assert "abc" not in columns["b"] and "rows 0" in columns["b"]
    ok = to_model_frame(rows[["a"]], features[:1])["a"].tolist()
    assert ok[:3] == [1.5, 2.0, 1.0] and np.isnan(ok[3])


def test_feature_json_round_trip_and_malformed_input() -> None:
    for feature in (
        Feature("a", "numeric"),
        Feature("b", "categorical", ["x", "y"]),
        Feature("c", "datetime", parts=["epoch", "year", "hour"]),
    ):
        assert Feature.from_dict(json.loads(json.dumps(feature.to_dict()))) == feature
    malformed: list[object] = [
        {"name": "a", "kind": "text"},
        {"name": "c", "kind": "datetime", "categories": None, "parts": ["epoch", "week"]},
        {"name": "c", "kind": "datetime", "categories": None, "parts": []},
        {"name": "c", "kind": "datetime", "categories": None},
        {"kind": "numeric"},
        ["a"],
        {"name": "b", "kind": "categorical", "categories": [1]},
    ]
    for bad in malformed:
        with pytest.raises(InvalidInput):
            Feature.from_dict(bad)


def test_bad_date_times_name_rows_not_values() -> None:
    features = [Feature("when", "datetime", parts=["epoch", "year"])]
    rows = pd.DataFrame({"when": pd.Series(["2024-01-02", "secret-value", None], dtype=object)})
    with pytest.raises(InvalidInput) as info:
        to_model_frame(rows, features)
    assert info.value.details is not None
    message = info.value.details["columns"]["when"]
    assert "secret" not in message and "rows 1" in message
