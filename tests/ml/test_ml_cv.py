"""Cross-validation: XGBoost's own numbers on the folds it was given, aggregated per round."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tests.ml.conftest import FAST, FEATURES, RecordingHooks, make_frame
from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.cv import cross_validate, fold_indices, is_maximized, refit
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec


def spec(task: str, target: str, **extra: object) -> TrainSpec:
    return TrainSpec(
        task_type=task,  # type: ignore[arg-type]
        target=target,
        features=FEATURES,
        params={**FAST, **extra},
        num_boost_round=8,
        seed=7,
    )


def direct_cv(
    frame: pd.DataFrame, s: TrainSpec, labels: np.ndarray[Any, Any], folds: int
) -> dict[str, list[float]]:
    """`xgboost.cv` by hand: the same coded frame, the same folds, the same parameters."""
    from xgenerator.ml.prepare import prepare

    data = prepare(frame, s, None)
    dall = xgb.DMatrix(data.frame, label=data.target, enable_categorical=True)
    classes = data.target if s.task_type == "classification" else None
    indices = fold_indices(len(data.frame), folds, s.seed, classes)
    params = {"tree_method": "hist", "seed": s.seed, **s.params}
    if s.task_type == "regression":
        params.update(objective="reg:squarederror", eval_metric="rmse")
    elif len(set(labels)) == 2:
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(objective="multi:softprob", eval_metric="mlogloss", num_class=3)
    out = xgb.cv(params, dall, s.num_boost_round, folds=indices, as_pandas=False)
    return cast(dict[str, list[float]], out)


@pytest.mark.parametrize(
    ("task", "target", "folds"),
    [("classification", "yes_no", 4), ("classification", "digit", 3), ("regression", "value", 5)],
)
def test_means_equal_xgboost_cv_on_the_same_folds(task: str, target: str, folds: int) -> None:
    frame = make_frame(240)
    s = spec(task, target)
    hooks = RecordingHooks()
    result = cross_validate(frame, s, folds, hooks)
    expected = direct_cv(frame, s, frame[target].to_numpy(), folds)
    assert len(result.history) == s.num_boost_round == len(hooks.rounds)
    assert [h["round"] for h in result.history] == list(range(1, 9))
    for key, values in expected.items():
        ours = key.replace("test-", "validation-")
        np.testing.assert_allclose([h[ours] for h in result.history], values, rtol=1e-6)
    # progress: one call per round with the aggregated metrics, as the history holds them
    assert [r[:2] for r in hooks.rounds] == [(i, 8) for i in range(1, 9)]
    assert hooks.rounds[-1][2] == {k: v for k, v in result.history[-1].items() if k != "round"}
    metric = result.best_metric
    values = [h[metric] for h in result.history]
    assert result.best_round == int(np.argmin(values)) + 1
    assert result.folds == folds and result.rows == 240


def test_stratified_folds_keep_class_shares() -> None:
    classes = np.array([0] * 90 + [1] * 30)
    for train, val in fold_indices(120, 3, 1, classes):
        assert np.bincount(classes[val]).tolist() == [30, 10]
        assert len(set(train) & set(val)) == 0


def test_group_folds_keep_each_group_on_one_side() -> None:
    groups = np.repeat(np.arange(12), 5)
    for train, val in fold_indices(60, 4, 1, groups=groups):
        assert not set(groups[train]) & set(groups[val])


def test_best_round_is_the_max_for_auc() -> None:
    assert is_maximized("auc") and is_maximized("ndcg@5") and not is_maximized("logloss")
    result = cross_validate(make_frame(240), spec("classification", "yes_no", eval_metric="auc"), 3)
    values = [h["validation-auc-mean"] for h in result.history]
    assert result.maximize and result.best_round == int(np.argmax(values)) + 1


def test_refit_trains_all_rows_for_the_best_round() -> None:
    frame = make_frame(240)
    s = spec("classification", "yes_no", eta=0.5)
    result = cross_validate(frame, s, 3)
    seen: list[tuple[int, int]] = []
    booster = refit(result, lambda r, t: seen.append((r, t)))
    assert booster.num_boosted_rounds() == result.best_round
    assert seen == [(i, result.best_round) for i in range(1, result.best_round + 1)]
    direct = xgb.train(
        result.params,
        xgb.DMatrix(
            to_model_frame(frame, result.features),
            label=frame["truth"].astype(int),
            enable_categorical=True,
        ),
        num_boost_round=result.best_round,
    )
    rows = to_model_frame(frame.head(20), result.features)
    np.testing.assert_allclose(
        booster.inplace_predict(rows), direct.inplace_predict(rows), rtol=1e-6
    )


def test_a_hook_error_stops_cv() -> None:
    hooks = RecordingHooks(stop_at=3)
    with pytest.raises(RuntimeError, match="cancelled"):
        cross_validate(make_frame(120), spec("regression", "value"), 3, hooks)
    assert len(hooks.rounds) == 3


def test_bad_folds() -> None:
    with pytest.raises(InvalidInput):
        cross_validate(make_frame(60), spec("regression", "value"), 1)
    rare = make_frame(60).assign(yes_no=["a"] * 58 + ["b"] * 2)
    with pytest.raises(TrainingFailed) as info:
        cross_validate(rare, spec("classification", "yes_no"), 3)
    assert info.value.details == {"smallest_class_rows": 2}


def test_early_stopping_cuts_the_history_at_the_best_round_like_xgboost_cv() -> None:
    frame = make_frame(240)
    s = TrainSpec(
        task_type="regression",
        target="value",
        features=FEATURES,
        params={**FAST, "eta": 0.9, "max_depth": 6},
        num_boost_round=200,
        early_stopping_rounds=3,
        seed=7,
    )
    hooks = RecordingHooks()
    result = cross_validate(frame, s, 3, hooks)
    from xgenerator.ml.prepare import prepare

    data = prepare(frame, s, None)
    dall = xgb.DMatrix(data.frame, label=data.target, enable_categorical=True)
    params = {"tree_method": "hist", "seed": 7, **s.params}
    params.update(objective="reg:squarederror", eval_metric="rmse")
    expected = xgb.cv(
        params,
        dall,
        200,
        folds=fold_indices(240, 3, 7),
        early_stopping_rounds=3,
        as_pandas=False,
    )
    means = cast(dict[str, list[float]], expected)["test-rmse-mean"]
    assert len(result.history) == len(means) < 200
    assert len(hooks.rounds) == len(means) + 3  # the rounds run past the best, then cut
    assert result.best_round == len(means)
    np.testing.assert_allclose([h["validation-rmse-mean"] for h in result.history], means)
