"""`ml.boosting.boost`: XGBoost's own loop, the same model, without `xgb.train`'s final reset
and its empty scoring after every round."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from tests.ml.conftest import FAST, FEATURES, make_frame
from xgenerator.ml.boosting import boost
from xgenerator.ml.train import TrainSpec, train


def matrices() -> tuple[xgb.DMatrix, xgb.DMatrix]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1200, 6))
    y = (x[:, 0] + rng.normal(size=1200) > 0).astype(float)
    dtrain = xgb.QuantileDMatrix(x[:1000], label=y[:1000], max_bin=32)
    return dtrain, xgb.QuantileDMatrix(x[1000:], label=y[1000:], ref=dtrain, max_bin=32)


PARAMS: dict[str, object] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "max_depth": 3,
    "max_bin": 32,
    "nthread": 1,
    "seed": 7,
}


def test_the_model_is_xgboosts_own_byte_for_byte() -> None:
    dtrain, dval = matrices()
    sampled = {**PARAMS, "subsample": 0.8}
    assert boost(sampled, dtrain, 30).save_raw() == xgb.train(sampled, dtrain, 30).save_raw()

    def stopping() -> list[xgb.callback.TrainingCallback]:
        return [xgb.callback.EarlyStopping(rounds=3)]

    evals = [(dval, "validation")]
    ours = boost(PARAMS, dtrain, 500, evals=evals, callbacks=stopping())
    theirs = xgb.train(PARAMS, dtrain, 500, evals=evals, callbacks=stopping(), verbose_eval=False)
    assert ours.num_boosted_rounds() < 500  # it stopped early, at the same round
    assert ours.save_raw() == theirs.save_raw()
    assert ours.attr("best_iteration") == theirs.attr("best_iteration")

    more = boost(PARAMS, dtrain, 10, xgb_model=ours)
    assert more.num_boosted_rounds() == ours.num_boosted_rounds() + 10
    assert more.save_raw() == xgb.train(PARAMS, dtrain, 10, xgb_model=theirs).save_raw()


def test_a_training_neither_resets_its_booster_nor_scores_nothing_each_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Booster.reset` saved and reloaded the model; XGBoost scored an empty list of sets
    after each of the 40 rounds. The curve's own scores (every 5th round here) remain."""
    scored: list[list[str]] = []
    eval_set = xgb.Booster.eval_set

    def counted(self: xgb.Booster, evals: Any, *args: Any, **kwargs: Any) -> str:
        scored.append([name for _, name in evals])
        return eval_set(self, evals, *args, **kwargs)

    def refuse(self: xgb.Booster) -> xgb.Booster:
        raise AssertionError("the booster was reset")

    monkeypatch.setattr(xgb.Booster, "eval_set", counted)
    monkeypatch.setattr(xgb.Booster, "reset", refuse)
    spec = TrainSpec(
        task_type="classification",
        target="yes_no",
        features=FEATURES,
        params=dict(FAST),
        num_boost_round=40,
        eval_every=5,
        eval_train_every=10,
    )
    result = train(make_frame(), spec)
    assert result.num_boost_round == 40
    assert [] not in scored
    assert len(scored) == 8  # rounds 5, 10, ..., 40
    assert [h["round"] for h in result.history if "validation-logloss" in h] == list(
        range(5, 41, 5)
    )
