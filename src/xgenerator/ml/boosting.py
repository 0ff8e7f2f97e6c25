"""XGBoost's boosting loop, as `xgb.train` runs it, without two costs a service does not need.

* `xgb.train` ends with `Booster.reset()`, which saves and reloads the whole model to drop
  its training state: 0.14 s of a 7 s training on nycflights13, whose 200 trees make a 38 MB
  model. A job drops the booster, and that state with it, once the model is stored.
* Without `evals` it still asks XGBoost to score an empty list after every round, 0.1 ms each:
  0.02 s of a 0.4 s training of 200 rounds. Our callbacks score what they need themselves.

The rest is `xgb.train`'s loop: the same booster, callbacks and rounds, so the same model
(`tests/ml/test_ml_boosting.py` compares the two byte for byte).
"""

from __future__ import annotations

from collections.abc import Sequence

import xgboost as xgb


def boost(
    params: dict[str, object],
    dtrain: xgb.DMatrix,
    num_boost_round: int,
    *,
    evals: Sequence[tuple[xgb.DMatrix, str]] = (),
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
    xgb_model: xgb.Booster | None = None,
) -> xgb.Booster:
    """Boost `num_boost_round` rounds on `dtrain` (on top of `xgb_model`, if any), scoring
    `evals` after every round as `xgb.train` does; callbacks may stop early."""
    scored = list(evals)
    booster = xgb.Booster(params, [dtrain, *(d for d, _ in scored)], model_file=xgb_model)
    container = xgb.callback.CallbackContainer(callbacks, output_margin=False)
    booster = container.before_training(booster)
    for epoch in range(num_boost_round):
        if container.before_iteration(booster, epoch, dtrain, scored):
            break
        booster.update(dtrain, iteration=epoch)
        if scored:
            stop = container.after_iteration(booster, epoch, dtrain, scored)
        else:
            stop = any(c.after_iteration(booster, epoch, {}) for c in container.callbacks)
        if stop:
            break
    trained: xgb.Booster = container.after_training(booster)
    return trained
