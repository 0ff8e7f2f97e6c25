"""Training: tasks and label styles, hooks, early stopping, resume and retrain."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.bundle import load_booster
from xgenerator.ml.evaluation import Validation, validation_metrics
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.prepare import prepare
from xgenerator.ml.split import split_indices
from xgenerator.ml.train import (
    InitModel,
    TrainResult,
    TrainSpec,
    _matrices,
    train,
    validation_every,
)


def spec(target: str, features: list[str], params: dict[str, Any], **kw: Any) -> TrainSpec:
    task: Any = "regression" if target == "value" else "classification"
    return TrainSpec(task, target, features, params, **{"num_boost_round": 8, **kw})


def check_common(result: TrainResult, rounds: int, rows: int) -> None:
    assert result.num_boost_round == rounds == result.booster.num_boosted_rounds()
    assert [h["round"] for h in result.history] == list(range(1, rounds + 1))
    assert result.train_rows + result.validation_rows == rows
    assert result.validation_rows == int(np.ceil(0.2 * rows))
    assert all(v is None or isinstance(v, float) for v in result.metrics.values())
    assert result.best_iteration is None


def test_binary_with_string_labels(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    result = train(frame, spec("yes_no", features, fast_params))
    check_common(result, 8, len(frame))
    assert result.labels is not None and result.labels.classes == ["no", "yes"]
    assert result.params["objective"] == "binary:logistic"
    assert result.params["eval_metric"] == "logloss"
    assert result.params["tree_method"] == "hist" and result.params["seed"] == 42
    assert set(result.history[0]) == {"round", "validation-logloss"}
    assert set(result.history[-1]) == {"round", "train-logloss", "validation-logloss"}
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "logloss"}
    assert result.metrics["accuracy"] is not None and result.metrics["accuracy"] > 0.8
    assert [f.kind for f in result.features] == ["numeric", "categorical", "numeric", "numeric"]
    assert result.features[1].categories == ["blue", "green", "red"]
    assert result.booster.feature_types == ["float", "c", "float", "float"]


def test_multiclass_with_int_labels(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    result = train(frame, spec("digit", features, fast_params))
    check_common(result, 8, len(frame))
    assert result.labels is not None and result.labels.classes == [3, 7, 9]
    assert result.params["objective"] == "multi:softprob"
    assert result.params["num_class"] == 3
    assert "validation-mlogloss" in result.history[-1]
    assert result.metrics["roc_auc"] is not None


def test_bool_labels_and_approx(frame: pd.DataFrame, features: list[str], fast_params: Any) -> None:
    params = {**fast_params, "tree_method": "approx", "eval_metric": ["logloss", "auc"]}
    result = train(frame, spec("truth", features, params))
    assert result.labels is not None and result.labels.classes == [False, True]
    expected = {"round", "train-logloss", "train-auc", "validation-logloss", "validation-auc"}
    assert set(result.history[-1]) == expected


def test_regression(frame: pd.DataFrame, features: list[str], fast_params: Any) -> None:
    result = train(frame, spec("value", features, fast_params, num_boost_round=30))
    check_common(result, 30, len(frame))
    assert result.labels is None
    assert set(result.metrics) == {"rmse", "mae", "r2"}
    assert result.metrics["r2"] is not None and result.metrics["r2"] > 0.7


def test_null_targets_are_dropped(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    frame.loc[frame.index[:40], "digit"] = np.nan  # the int column becomes float
    result = train(frame, spec("digit", features, fast_params))
    assert result.train_rows + result.validation_rows == len(frame) - 40
    assert result.labels is not None and result.labels.classes == [3, 7, 9]


def test_split_is_stratified_and_keeps_singleton_classes_in_training(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    frame.loc[frame.index[0], "digit"] = 42  # one row of a class: no stratification possible
    result = train(frame, spec("digit", features, fast_params))
    assert result.labels is not None and 42 in result.labels.classes
    assert result.metrics["roc_auc"] is None  # class 42 is not in the validation set


def test_hooks_see_every_round(
    frame: pd.DataFrame, features: list[str], fast_params: Any, hooks_cls: Any
) -> None:
    hooks = hooks_cls()
    result = train(frame, spec("yes_no", features, fast_params), hooks)
    assert [(r, t) for r, t, _ in hooks.rounds] == [(i, 8) for i in range(1, 9)]
    assert hooks.rounds[-1][2] == {k: v for k, v in result.history[-1].items() if k != "round"}
    assert sorted(hooks.checkpoints) == list(range(1, 9))
    assert load_booster(hooks.checkpoints[3]).num_boosted_rounds() == 3


def test_validation_metric_every_k_rounds_scores_what_every_round_would(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    every_round = train(frame, spec("yes_no", features, fast_params, num_boost_round=14))
    sparse = train(frame, spec("yes_no", features, fast_params, num_boost_round=14, eval_every=4))
    scored = {h["round"]: h for h in sparse.history if "validation-logloss" in h}
    assert list(scored) == [4, 8, 12, 14]  # every 4th and the last
    assert [h["round"] for h in sparse.history] == list(range(1, 15))  # progress every round
    for h in every_round.history:
        if h["round"] in scored:
            assert scored[h["round"]]["validation-logloss"] == h["validation-logloss"]
    assert sparse.metrics == every_round.metrics
    rows = to_model_frame(frame, sparse.features)
    np.testing.assert_array_equal(
        sparse.booster.inplace_predict(rows), every_round.booster.inplace_predict(rows)
    )


@pytest.mark.parametrize(
    ("target", "early_stopping"), [("digit", None), ("yes_no", None), ("noise", 3)]
)
def test_validation_metrics_are_those_of_a_fresh_prediction(
    frame_factory: Any,
    features: list[str],
    fast_params: Any,
    target: str,
    early_stopping: int | None,
) -> None:
    """The metrics come from XGBoost's cache of the validation predictions (or, after early
    stopping, a prediction of the kept rounds): the same as predicting the rows afresh."""
    frame = frame_factory(seed=3)
    frame["noise"] = np.random.default_rng(3).integers(0, 2, size=len(frame))
    params = {**fast_params, "eta": 0.5}
    job = spec(target, features, params, num_boost_round=30, early_stopping_rounds=early_stopping)
    result = train(frame, job)
    assert (result.best_iteration is not None) == bool(early_stopping)
    n_classes = len(result.labels.classes) if result.labels is not None else 0
    data = prepare(frame, job, None)
    _, val_idx = split_indices(len(data.frame), 0.2, 42, data.target if n_classes else None)
    fresh = result.booster.inplace_predict(to_model_frame(frame.iloc[val_idx], result.features))
    expected = validation_metrics(
        "classification", result.params, n_classes, 10, Validation(data.target[val_idx], fresh)
    )
    assert result.metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-6), name


def test_the_default_validation_interval_gives_about_twenty_points(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    def every(**kw: Any) -> int:
        return validation_every(spec("yes_no", features, fast_params, **kw))

    assert every(num_boost_round=20) == 1
    assert every(num_boost_round=30) == 2
    assert every(num_boost_round=200) == 10
    assert every(num_boost_round=1000, eval_every=7) == 7
    # early stopping reads the metric every round: never sparser, and a request cannot ask
    assert every(num_boost_round=1000, early_stopping_rounds=10) == 1
    with pytest.raises(InvalidInput):
        train(
            frame,
            spec("yes_no", features, fast_params, early_stopping_rounds=3, eval_every=2),
        )


def test_training_metric_every_k_rounds_leaves_the_model_unchanged(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    params = {**fast_params, "eval_metric": ["logloss", "auc"]}
    given = spec("yes_no", features, params, num_boost_round=12, eval_train_every=5)
    sparse = train(frame, given)
    train_rounds = [h["round"] for h in sparse.history if "train-logloss" in h]
    assert train_rounds == [5, 10, 12]  # every 5th and the last
    assert all("train-auc" in h for h in sparse.history if "train-logloss" in h)
    assert all({"validation-logloss", "validation-auc"} <= set(h) for h in sparse.history)
    never = train(frame, replace(given, eval_train_every=0))
    assert not any(k.startswith("train-") for h in never.history for k in h)

    # XGBoost scoring both sets every round, as before: the same model, the same numbers
    data = prepare(frame, given, None)
    train_idx, val_idx = split_indices(len(data.frame), 0.2, 42, data.target)
    dtrain, dval = _matrices(
        data.frame.iloc[train_idx],
        data.target[train_idx],
        data.frame.iloc[val_idx],
        data.target[val_idx],
        sparse.params,
        None,
    )
    log: dict[str, Any] = {}
    both = xgb.train(
        sparse.params,
        dtrain,
        12,
        evals=[(dtrain, "train"), (dval, "validation")],
        evals_result=log,
        verbose_eval=False,
    )
    for row in sparse.history:
        i = row["round"] - 1
        assert row["validation-auc"] == log["validation"]["auc"][i]
        if "train-logloss" in row:
            assert row["train-logloss"] == log["train"]["logloss"][i]
    x = data.frame
    expected = both.inplace_predict(x)
    np.testing.assert_array_equal(sparse.booster.inplace_predict(x), expected)
    np.testing.assert_array_equal(never.booster.inplace_predict(x), expected)


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("error", [Cancelled("job cancelled"), xgb.core.XGBoostError("mine")])
def test_an_exception_from_a_hook_stops_training_unchanged(
    frame: pd.DataFrame, features: list[str], fast_params: Any, hooks_cls: Any, error: Exception
) -> None:
    hooks = hooks_cls(stop_at=3, stop_with=error)
    with pytest.raises(type(error)) as info:
        train(frame, spec("yes_no", features, fast_params), hooks)
    assert info.value is error  # not wrapped, even when it is an XGBoostError
    assert [r for r, _, _ in hooks.rounds] == [1, 2, 3]


def test_early_stopping_keeps_the_best_rounds(
    frame_factory: Any, features: list[str], fast_params: Any
) -> None:
    frame = frame_factory(seed=3)
    frame["noise"] = np.random.default_rng(3).integers(0, 2, size=len(frame))
    params = {**fast_params, "eta": 0.5}
    result = train(
        frame, spec("noise", features, params, num_boost_round=200, early_stopping_rounds=3)
    )
    assert result.best_iteration is not None
    assert len(result.history) < 200
    assert len(result.history) == result.best_iteration + 1 + 3
    assert result.num_boost_round == result.best_iteration + 1


def test_resume_from_a_checkpoint_finishes_the_same_model(
    frame: pd.DataFrame, features: list[str], fast_params: Any, hooks_cls: Any
) -> None:
    full = train(frame, spec("digit", features, fast_params, num_boost_round=10))
    crashed = hooks_cls(stop_at=5)  # the worker dies in round 5, after checkpoint 4
    with pytest.raises(RuntimeError):
        train(frame, spec("digit", features, fast_params, num_boost_round=10), crashed)
    init = InitModel(load_booster(crashed.checkpoints[4]), full.features, full.labels, 4)
    resumed_hooks = hooks_cls()
    resumed = train(
        frame, spec("digit", features, fast_params, num_boost_round=10), resumed_hooks, init=init
    )
    assert resumed.num_boost_round == 10
    assert [h["round"] for h in resumed.history] == list(range(5, 11))
    assert [(r, t) for r, t, _ in resumed_hooks.rounds] == [(i, 10) for i in range(5, 11)]
    x = frame.iloc[:20]
    np.testing.assert_allclose(
        resumed.booster.inplace_predict(to_model_frame(x, resumed.features)),
        full.booster.inplace_predict(to_model_frame(x, full.features)),
        rtol=1e-5,
    )


def test_retrain_from_a_parent_adds_rounds_on_new_data(
    frame: pd.DataFrame, frame_factory: Any, features: list[str], fast_params: Any
) -> None:
    parent = train(frame, spec("digit", features, fast_params, num_boost_round=5))
    parent.booster.set_attr(xgenerator="{}")
    new = frame_factory(n=120, seed=9)
    new.loc[new.index[:5], "cat"] = "violet"  # unseen by the parent: coded as missing
    init = InitModel(parent.booster, parent.features, parent.labels)
    child = train(new, spec("digit", features, fast_params, num_boost_round=4), init=init)
    assert child.num_boost_round == 9
    assert [h["round"] for h in child.history] == [1, 2, 3, 4]
    assert child.features == parent.features and child.labels == parent.labels
    assert child.booster.attr("xgenerator") is None  # the parent's metadata is not inherited
    assert parent.booster.num_boosted_rounds() == 5  # the parent is untouched


def test_retrain_with_unknown_labels_fails(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    parent = train(frame, spec("digit", features, fast_params, num_boost_round=3))
    frame.loc[frame.index[:3], "digit"] = 11
    init = InitModel(parent.booster, parent.features, parent.labels)
    with pytest.raises(TrainingFailed) as info:
        train(frame, spec("digit", features, fast_params), init=init)
    assert info.value.error_type == "IncompatibleLabels"
    assert info.value.details is not None and info.value.details["unknown"] == [11]


def test_resume_after_the_last_round_trains_nothing(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    done = train(frame, spec("yes_no", features, fast_params, num_boost_round=4))
    init = InitModel(done.booster, done.features, done.labels, rounds_done=4)
    again = train(
        frame,
        spec("yes_no", features, fast_params, num_boost_round=4, early_stopping_rounds=2),
        init=init,
    )
    assert again.num_boost_round == 4 and again.history == [] and again.best_iteration is None
