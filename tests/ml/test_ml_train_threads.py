"""`ml.train` asks its hooks for threads before the matrices and every round, and applies a
changed count to the live booster between rounds (the worker's thread budget relies on it)."""

from __future__ import annotations

import json

import pandas as pd
import xgboost as xgb

from tests.ml.conftest import FEATURES, RecordingHooks
from xgenerator.ml.train import TrainSpec, train


class ThreadHooks(RecordingHooks):
    """Hands out 2 threads, then 1 from round 4 on; records the booster's count per round."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.used: dict[int, int] = {}

    def threads(self) -> int | None:
        self.asked += 1
        return 2 if self.asked <= 3 else 1  # asked for the matrices, then before each round

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        config = json.loads(booster.save_config())
        self.used[round] = int(config["learner"]["generic_param"]["nthread"])


def test_the_thread_count_changes_between_rounds(frame: pd.DataFrame) -> None:
    hooks = ThreadHooks()
    spec = TrainSpec(
        task_type="classification",
        target="yes_no",
        features=FEATURES,
        params={"max_depth": 3, "max_bin": 32},
        num_boost_round=6,
    )
    result = train(frame, spec, hooks)
    assert hooks.used == {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1}
    assert hooks.asked == 1 + 6
    assert "nthread" not in result.params  # the budget's choice is not a model parameter


def test_without_an_answer_the_nthread_parameter_stays(frame: pd.DataFrame) -> None:
    hooks = RecordingHooks()
    spec = TrainSpec(
        task_type="classification",
        target="yes_no",
        features=FEATURES,
        params={"nthread": 1, "max_depth": 3},
        num_boost_round=2,
    )
    result = train(frame, spec, hooks)
    config = json.loads(result.booster.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "1"
