"""A ranking, survival, weighted or quantile job that resumes from its checkpoint (a worker
died) finishes with the same model as one that never stopped."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.ml.conftest import RecordingHooks, tasks_frame
from xgenerator.ml.bundle import load_booster
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.prepare import fresh_encoding
from xgenerator.ml.train import InitModel, TrainSpec, train

FAST: dict[str, object] = {"nthread": 1, "max_depth": 3, "max_bin": 32}


SPECS: dict[str, dict[str, Any]] = {
    "ranking": {"task_type": "ranking", "target": "rel", "group_column": "q"},
    "survival": {
        "task_type": "survival",
        "target": "time",
        "event_column": "event",
        "params": {**FAST, "objective": "survival:aft"},
    },
    "weights": {"task_type": "regression", "target": "y", "weight_column": "w"},
    "quantiles": {
        "task_type": "regression",
        "target": "y",
        "params": {**FAST, "objective": "reg:quantileerror", "quantile_alpha": [0.2, 0.8]},
    },
}


@pytest.mark.parametrize("name", list(SPECS))
def test_resume_finishes_the_same_model(name: str) -> None:
    data = tasks_frame()
    spec = TrainSpec(
        **{"features": ["x", "z"], "params": FAST, "num_boost_round": 8, **SPECS[name]}
    )
    full = train(data, spec)
    crashed = RecordingHooks(stop_at=5)  # dies in round 5, after checkpoint 4
    with pytest.raises(RuntimeError):
        train(data, spec, crashed)
    encoding = fresh_encoding(data, spec)
    init = InitModel(load_booster(crashed.checkpoints[4]), encoding.features, None, 4)
    resumed = train(data, spec, init=init)
    assert resumed.num_boost_round == 8
    assert resumed.metrics == pytest.approx(full.metrics)
    rows = to_model_frame(data.iloc[:30], full.features)
    np.testing.assert_allclose(
        resumed.booster.inplace_predict(rows), full.booster.inplace_predict(rows), rtol=1e-5
    )
