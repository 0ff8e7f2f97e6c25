"""A job resumed from its checkpoint is the job that never stopped: the same trees when the
trees sample rows and columns (XGBoost keeps its random state in memory only), the same
early-stopping decision (the best round and the rounds since it are carried over), the same
pair sampling in ranking. Training stops by raising from a hook after round k, as a dying
worker would, and resumes from checkpoint k with the history recorded up to it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.ml.conftest import FAST, FEATURES, RecordingHooks, make_frame, tasks_frame
from xgenerator.ml.bundle import load_booster
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.prepare import fresh_encoding
from xgenerator.ml.resume import (
    APPROX_SAMPLING_RESUME,
    CADENCE_ATTR,
    checkpoint_cadence,
    inexact_resume,
)
from xgenerator.ml.train import InitModel, TrainResult, TrainSpec, train


def _history(hooks: RecordingHooks, upto: int) -> list[dict[str, Any]]:
    return [{"round": r, **m} for r, _, m in hooks.rounds if r <= upto]


def _resume(
    data: pd.DataFrame,
    spec: TrainSpec,
    at: int,
    *,
    with_history: bool = True,
    checkpoint_every: int = 1,
) -> tuple[TrainResult, RecordingHooks]:
    """Train until round `at` + 1 raises, then resume from the checkpoint at round `at`."""
    crashed = RecordingHooks(stop_at=at + 1, checkpoint_every=checkpoint_every)
    with pytest.raises(RuntimeError):
        train(data, spec, crashed)
    encoding = fresh_encoding(data, spec)
    init = InitModel(
        load_booster(crashed.checkpoints[at]),
        encoding.features,
        encoding.labels,
        rounds_done=at,
        history=_history(crashed, at) if with_history else None,
    )
    resumed_hooks = RecordingHooks()
    return train(data, spec, resumed_hooks, init=init), resumed_hooks


def _predictions(result: TrainResult, data: pd.DataFrame) -> np.ndarray[Any, Any]:
    return np.asarray(result.booster.inplace_predict(to_model_frame(data, result.features)))


def _regression(params: dict[str, Any], rounds: int, **spec: Any) -> TrainSpec:
    """A regression of `value` on the test frame's features, with `params` over FAST."""
    return TrainSpec(
        task_type="regression",
        target="value",
        features=FEATURES,
        params={**FAST, **params},
        num_boost_round=rounds,
        **spec,
    )


SAMPLING: dict[str, tuple[str, str, dict[str, Any]]] = {
    "subsample": ("classification", "yes_no", {"subsample": 0.7}),
    "colsample_bytree": ("classification", "digit", {"colsample_bytree": 0.6}),
    "colsample_bylevel_bynode": (
        "regression",
        "value",
        {"colsample_bylevel": 0.7, "colsample_bynode": 0.6, "subsample": 0.8},
    ),
    "approx": ("regression", "value", {"tree_method": "approx", "colsample_bytree": 0.6}),
}


@pytest.mark.parametrize("name", list(SAMPLING))
def test_sampling_trees_resume_to_the_same_model(name: str) -> None:
    task_type, target, params = SAMPLING[name]
    data = make_frame(400)
    spec = TrainSpec(
        task_type=task_type,  # type: ignore[arg-type]
        target=target,
        features=FEATURES,
        params={**FAST, **params},
        num_boost_round=25,
    )
    full_hooks = RecordingHooks()
    full = train(data, spec, full_hooks)
    resumed, resumed_hooks = _resume(data, spec, at=7)
    assert resumed.num_boost_round == full.num_boost_round == 25
    np.testing.assert_allclose(_predictions(resumed, data), _predictions(full, data), rtol=1e-6)
    # the validation curve after the checkpoint is the uninterrupted run's, round by round
    assert resumed_hooks.rounds == full_hooks.rounds[7:]


def test_sampling_trees_resume_to_the_same_model_between_sparse_checkpoints() -> None:
    """The random state is reset after each checkpoint only (not every round): the
    uninterrupted run's rounds between checkpoints draw on from it, as the resumed run's do."""
    data = make_frame(400)
    spec = _regression({"subsample": 0.7, "colsample_bynode": 0.6}, 30)
    full = train(data, spec, RecordingHooks(checkpoint_every=10))
    resumed, _ = _resume(data, spec, at=20, checkpoint_every=10)
    np.testing.assert_allclose(_predictions(resumed, data), _predictions(full, data), rtol=1e-6)


def test_approx_with_row_sampling_resumes_to_a_model_as_good_and_says_why_not_the_same() -> None:
    """XGBoost's approx updater with subsample: the one configuration a resume cannot
    reproduce. The bound: the resumed model scores within 10 % of the uninterrupted one
    (another draw of the same rows' sample), and `inexact_resume` names the difference."""
    params = {**FAST, "tree_method": "approx", "subsample": 0.6}
    assert inexact_resume(params) == APPROX_SAMPLING_RESUME
    assert inexact_resume({**FAST, "subsample": 0.6}) is None  # hist is exact
    for seed in range(3):
        data = make_frame(400, seed=seed)
        spec = _regression(params, 25)
        full = train(data, spec)
        resumed, _ = _resume(data, spec, at=7)
        assert resumed.metrics["rmse"] == pytest.approx(full.metrics["rmse"], rel=0.10)


def test_ranking_pair_sampling_resumes_to_the_same_model() -> None:
    """rank:pairwise with the `mean` pair method samples pairs from a generator XGBoost seeds
    with its round counter, which restarts at 0 in each `xgb.train` call."""
    data = tasks_frame(500)
    spec = TrainSpec(
        task_type="ranking",
        target="rel",
        group_column="q",
        features=["x", "z"],
        params={**FAST, "objective": "rank:pairwise", "lambdarank_pair_method": "mean"},
        num_boost_round=15,
    )
    full = train(data, spec)
    resumed, _ = _resume(data, spec, at=5)
    np.testing.assert_allclose(_predictions(resumed, data), _predictions(full, data), rtol=1e-6)


@pytest.mark.parametrize("eval_metric", [None, ["logloss", "auc"]])
def test_early_stopping_resumes_where_it_was(eval_metric: list[str] | None) -> None:
    """Checkpointed between the best round and the stop: the resumed run stops where the
    uninterrupted one did, not `early_stopping_rounds` after the checkpoint."""
    data = make_frame(400)
    params: dict[str, Any] = {**FAST, "eta": 1.0, "subsample": 0.8}
    if eval_metric is not None:
        params["eval_metric"] = eval_metric  # the last one (auc, maximized) decides
    spec = TrainSpec(
        task_type="classification",
        target="yes_no",
        features=FEATURES,
        params=params,
        num_boost_round=200,
        early_stopping_rounds=5,
    )
    full_hooks = RecordingHooks()
    full = train(data, spec, full_hooks)
    assert full.best_iteration is not None
    trained = len(full_hooks.rounds)
    assert trained == full.best_iteration + 1 + 5 < 200  # it did stop early
    at = full.best_iteration + 3  # two rounds without improvement before the checkpoint

    resumed, resumed_hooks = _resume(data, spec, at)
    assert resumed.best_iteration == full.best_iteration
    assert resumed.num_boost_round == full.num_boost_round == full.best_iteration + 1
    assert [r for r, _, _ in resumed_hooks.rounds] == list(range(at + 1, trained + 1))
    np.testing.assert_allclose(_predictions(resumed, data), _predictions(full, data), rtol=1e-6)

    # the state this test checks: without the earlier rounds, early stopping starts over
    restarted, restarted_hooks = _resume(data, spec, at, with_history=False)
    assert len(restarted_hooks.rounds) > len(resumed_hooks.rounds)
    assert restarted.best_iteration != full.best_iteration


def test_a_checkpoint_at_the_stopping_round_trains_nothing_more() -> None:
    """The worker died after the round early stopping ended on, before the model was
    stored: the resumed run stops at once and keeps the same best rounds."""
    data = make_frame(300)
    spec = _regression({"eta": 1.0}, 200, early_stopping_rounds=3)
    hooks = RecordingHooks()
    full = train(data, spec, hooks)
    last = hooks.rounds[-1][0]
    assert last < 200
    encoding = fresh_encoding(data, spec)
    init = InitModel(
        load_booster(hooks.checkpoints[last]),
        encoding.features,
        None,
        rounds_done=last,
        history=_history(hooks, last),
    )
    again_hooks = RecordingHooks()
    again = train(data, spec, again_hooks, init=init)
    assert again_hooks.rounds == []
    assert again.best_iteration == full.best_iteration
    assert again.num_boost_round == full.num_boost_round
    np.testing.assert_allclose(_predictions(again, data), _predictions(full, data), rtol=1e-6)


def test_an_incomplete_history_restarts_early_stopping_rather_than_misplace_it() -> None:
    """Rounds missing before the checkpoint (a job checkpointed by an older version): the
    replay would put the best round at the wrong place, so early stopping starts over."""
    data = make_frame(300)
    spec = TrainSpec(
        task_type="classification",
        target="yes_no",
        features=FEATURES,
        params={**FAST, "eta": 1.0},
        num_boost_round=200,
        early_stopping_rounds=4,
    )
    crashed = RecordingHooks(stop_at=4)
    with pytest.raises(RuntimeError):
        train(data, spec, crashed)
    encoding = fresh_encoding(data, spec)
    partial = _history(crashed, 3)[1:]  # round 1 is missing
    init = InitModel(
        load_booster(crashed.checkpoints[3]),
        encoding.features,
        encoding.labels,
        rounds_done=3,
        history=partial,
    )
    resumed = train(data, spec, init=init)
    assert resumed.best_iteration is not None and resumed.best_iteration >= 3


@pytest.mark.parametrize("params", [{}, {"subsample": 0.7}], ids=["no sampling", "sampling"])
def test_the_model_keeps_the_users_seed(params: dict[str, Any]) -> None:
    """Trees that draw nothing are not reseeded (a changed parameter makes XGBoost configure
    itself again before the next round); sampling trees are, and the seed is put back."""
    spec = _regression({"seed": 7, **params}, 12)
    booster = train(make_frame(300), spec).booster
    config = json.loads(booster.save_config())
    assert config["learner"]["generic_param"]["seed"] == "7"
    assert booster.attr(CADENCE_ATTR) is None  # only the checkpoints carry it


def test_a_resume_keeps_its_checkpoints_cadence() -> None:
    """Whatever this worker's setting; a checkpoint that does not say (written by a version
    that reseeded every round) resumes reseeding every round; a retrain starts afresh."""
    spec = _regression({"subsample": 0.7}, 12)
    hooks = RecordingHooks(checkpoint_every=4)
    model = train(make_frame(300), spec, hooks).booster
    checkpoint = load_booster(hooks.checkpoints[8])
    assert checkpoint_cadence(checkpoint, 8, wanted=25) == 4
    checkpoint.set_attr(**{CADENCE_ATTR: None})
    assert checkpoint_cadence(checkpoint, 8, wanted=25) == 1
    assert checkpoint_cadence(model, 0, wanted=25) == 25
