"""Date-time columns as numeric parts: time zones, frozen parts, prediction inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import InvalidInput
from xgenerator.ml.datetimes import to_utc
from xgenerator.ml.features import Feature, infer_features, model_columns, to_model_frame

ALWAYS = ["epoch", "year", "month", "day", "day_of_week", "day_of_year"]


def test_a_tz_aware_value_is_expanded_in_utc() -> None:
    # 23:30 on Sunday 10 March in New York (-05:00) is 04:30 on Monday 11 March in UTC
    when = pd.Series(pd.to_datetime(["2024-03-10T23:30:00-05:00", "NaT"], utc=True))
    df = pd.DataFrame({"when": when.dt.tz_convert("America/New_York")})
    [feature] = infer_features(df, ["when"])
    assert feature.kind == "datetime"
    assert feature.parts == [*ALWAYS, "hour", "minute"]
    assert feature.columns == [f"when__{p}" for p in feature.parts]
    frame = to_model_frame(df, [feature])
    assert list(frame.columns) == feature.columns
    first = frame.iloc[0].to_dict()
    assert first["when__epoch"] == np.float32(pd.Timestamp("2024-03-11T04:30Z").timestamp())
    assert (first["when__year"], first["when__month"], first["when__day"]) == (2024, 3, 11)
    assert first["when__day_of_week"] == 0  # Monday
    assert first["when__day_of_year"] == 31 + 29 + 11  # 2024 is a leap year
    assert (first["when__hour"], first["when__minute"]) == (4, 30)
    assert frame.iloc[1].isna().all()  # a missing date-time is missing in every part
    assert all(frame[c].dtype == np.float32 for c in frame.columns)


def test_naive_values_are_utc_and_dates_have_no_time_of_day() -> None:
    df = pd.DataFrame({"day": pd.to_datetime(["2024-01-01", "2024-12-31"])})
    [feature] = infer_features(df, ["day"])
    assert feature.parts == ALWAYS  # no hour or minute: every value is at midnight
    frame = to_model_frame(df, [feature])
    assert frame["day__epoch"].tolist() == [1704067200.0, np.float32(1735603200.0)]
    assert frame["day__day_of_year"].tolist() == [1.0, 366.0]


def test_prediction_inputs_of_every_form_give_the_same_parts() -> None:
    train = pd.DataFrame({"t": pd.to_datetime(["2024-03-11T04:30:00Z", "2024-05-01T10:00:00Z"])})
    features = infer_features(train, ["t"])
    same = [
        "2024-03-10T23:30:00-05:00",
        "2024-03-11T04:30:00Z",
        "2024-03-11 04:30:00",
        "2024-03-11T05:30+01:00",
        pd.Timestamp("2024-03-11T04:30:00Z").timestamp(),  # epoch seconds
        int(pd.Timestamp("2024-03-11T04:30:00Z").timestamp()),
        dt.datetime(2024, 3, 11, 4, 30),
        dt.datetime(2024, 3, 11, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ]
    rows = pd.DataFrame({"t": pd.Series([*same, None], dtype=object)})
    frame = to_model_frame(rows, features)
    expected = to_model_frame(train.iloc[:1], features).iloc[0].tolist()
    for i in range(len(same)):
        assert frame.iloc[i].tolist() == expected, same[i]
    assert frame.iloc[-1].isna().all()


def test_parts_are_frozen_at_training() -> None:
    train = pd.DataFrame({"d": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    features = infer_features(train, ["d"])
    later = pd.DataFrame({"d": ["2024-06-01T13:45:00Z"]})  # has a time, but the model has none
    assert list(to_model_frame(later, features).columns) == [f"d__{p}" for p in ALWAYS]


def test_values_that_are_not_date_times_are_refused() -> None:
    features = [Feature("t", "datetime", parts=["epoch"])]
    rows = pd.DataFrame({"t": pd.Series(["2024-01-01", "tomorrow", True], dtype=object)})
    with pytest.raises(InvalidInput) as info:
        to_model_frame(rows, features)
    assert info.value.details is not None
    message = info.value.details["columns"]["t"]
    assert "tomorrow" not in message and "2 value(s), in rows 1, 2, are not" in message
    with pytest.raises(ValueError, match="out of range"):
        to_utc(pd.Series([1e12]))


def test_object_columns_of_date_times_are_date_time_features() -> None:
    df = pd.DataFrame({"d": pd.Series([dt.date(2024, 1, 1), None], dtype=object)})
    [feature] = infer_features(df, ["d"])
    assert feature.kind == "datetime"


def test_a_part_clashing_with_a_column_is_refused() -> None:
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-01"]), "t__year": [1.0]})
    with pytest.raises(InvalidInput, match="clash"):
        infer_features(df, ["t", "t__year"])
    assert model_columns([Feature("x", "numeric")]) == ["x"]


def test_repeated_instants_become_a_categorical_part_coded_against_training() -> None:
    hours = pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC")
    train = pd.DataFrame({"t": np.repeat(hours, 10)})  # every instant on 10 rows
    [feature] = infer_features(train, ["t"])
    assert feature.parts is not None and feature.parts[-1] == "instant"
    assert feature.instants == sorted(int(h.value) for h in hours)
    assert Feature.from_dict(feature.to_dict()) == feature  # frozen with the model
    rows = pd.DataFrame(
        {"t": ["2024-01-01T03:00:00Z", "2024-01-01T04:00:00+01:00", "2030-01-01", None]}
    )
    codes = to_model_frame(rows, [feature])["t__instant"]
    assert isinstance(codes.dtype, pd.CategoricalDtype)
    # 03:00 UTC is the fourth training hour; 04:00+01:00 is 03:00 UTC too; an unseen
    # instant and a null are missing, never another instant's code
    assert codes.cat.codes.tolist() == [3, 3, -1, -1]


def test_unique_moments_get_no_instant_part() -> None:
    moments = pd.Series(pd.date_range("2024-01-01", periods=500, freq="37min", tz="UTC"))
    [feature] = infer_features(pd.DataFrame({"t": moments}), ["t"])
    assert feature.parts is not None and "instant" not in feature.parts
    assert feature.instants is None


def test_a_model_learns_what_rows_sharing_an_instant_have_in_common() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    hours = pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC")
    stormy = rng.random(len(hours)) < 0.3  # an effect of the hour no date part predicts
    which = rng.integers(0, len(hours), 8_000)
    frame = pd.DataFrame({"t": hours[which]})
    label = (stormy[which] ^ (rng.random(len(which)) < 0.05)).astype(int)
    features = infer_features(frame, ["t"])
    x = to_model_frame(frame, features)
    booster = xgb.train(
        {"max_depth": 3, "objective": "binary:logistic"},
        xgb.DMatrix(x[:6000], label[:6000], enable_categorical=True),
        30,
    )
    accuracy = ((booster.inplace_predict(x[6000:]) > 0.5) == label[6000:]).mean()
    assert accuracy > 0.9  # the 5 % label noise is all it misses
