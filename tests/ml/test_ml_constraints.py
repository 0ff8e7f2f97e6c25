"""Constraints by column name: a monotone constraint that holds on a grid (and does not
without it), interaction groups mapped past date-time parts, and the columns refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.constraints import to_positions
from xgenerator.ml.features import Feature
from xgenerator.ml.params import validate_params
from xgenerator.ml.train import TrainSpec, train

FAST: dict[str, object] = {"nthread": 1, "max_depth": 4, "max_bin": 64}


def wavy(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 6, size=n)
    z = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": z, "y": x + 2 * np.sin(2 * x) + z + rng.normal(size=n)})


def grid_predictions(params: dict[str, Any]) -> np.ndarray[Any, Any]:
    result = train(wavy(), TrainSpec("regression", "y", ["x", "z"], params, num_boost_round=40))
    grid = np.column_stack([np.linspace(0, 6, 200), np.full(200, 0.3)]).astype(np.float32)
    return np.asarray(result.booster.inplace_predict(grid))


def test_a_monotone_constraint_holds_on_a_grid_and_fails_without_it() -> None:
    free = grid_predictions(FAST)
    assert (np.diff(free) < -1e-3).any()  # the data go down in places: the test means something
    increasing = grid_predictions({**FAST, "monotone_constraints": {"x": 1}})
    assert (np.diff(increasing) >= 0).all()
    decreasing = grid_predictions({**FAST, "monotone_constraints": {"x": -1}})
    assert (np.diff(decreasing) <= 0).all()


def test_constraints_map_to_model_positions_past_date_time_parts() -> None:
    features = [
        Feature("when", "datetime", parts=["year", "month"]),
        Feature("a", "numeric"),
        Feature("b", "numeric"),
        Feature("c", "categorical", ["u", "v"]),
    ]
    params = {"monotone_constraints": {"b": -1, "a": 1}, "interaction_constraints": [["a", "b"]]}
    mapped = to_positions(params, features)
    assert mapped["monotone_constraints"] == "(0,0,1,-1,0)"
    assert mapped["interaction_constraints"] == "[[2, 3]]"
    assert params["monotone_constraints"] == {"b": -1, "a": 1}  # the user's form is kept
    for bad in ({"monotone_constraints": {"c": 1}}, {"interaction_constraints": [["when"]]}):
        with pytest.raises(TrainingFailed) as caught:
            to_positions(bad, features)
        assert caught.value.error_type == "ConstrainedColumnUnusable"


def test_interaction_constraints_train() -> None:
    params = {**FAST, "interaction_constraints": [["x"], ["z"]]}
    result = train(wavy(), TrainSpec("regression", "y", ["x", "z"], params, num_boost_round=5))
    assert result.params["interaction_constraints"] == [["x"], ["z"]]
    # no tree splits on both: every tree is a function of one column only
    for tree in result.booster.trees_to_dataframe().groupby("Tree"):
        assert tree[1]["Feature"].replace("Leaf", np.nan).dropna().nunique() <= 1


@pytest.mark.parametrize(
    "params",
    [
        {"monotone_constraints": {"x": 2}},
        {"monotone_constraints": {"x": True}},
        {"monotone_constraints": [1, 0]},
        {"monotone_constraints": {}},
        {"interaction_constraints": [["x", "x"]]},
        {"interaction_constraints": [[]]},
        {"interaction_constraints": "[[0, 1]]"},
        {"interaction_constraints": [[0, 1]]},
    ],
)
def test_malformed_constraints_are_invalid_params(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_params(params, "regression")
    assert caught.value.details is not None
    assert set(caught.value.details["errors"]) == set(params)


@pytest.mark.parametrize("objective", ["reg:quantileerror", "reg:absoluteerror"])
def test_monotone_constraints_are_refused_where_xgboost_does_not_keep_them(objective: str) -> None:
    # XGBoost refreshes these objectives' leaves after each tree: on the data of
    # tests/jobs/test_training_tasks_e2e.py a model with {"x": 1} went down in x
    params = {"objective": objective, "monotone_constraints": {"x": 1}}
    with pytest.raises(InvalidInput) as caught:
        validate_params(params, "regression")
    assert caught.value.details is not None
    assert "monotone_constraints" in caught.value.details["errors"]
