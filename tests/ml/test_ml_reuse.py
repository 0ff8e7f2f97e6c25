"""Trainings on one frame share its prepared data and matrices (a search's trials): a training
that reuses them is the training that built its own, and a spec that changes what a step reads
gets that step built afresh."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.ml.conftest import FAST, FEATURES, make_frame
from xgenerator.ml import train as train_module
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.prepare import prepare
from xgenerator.ml.reuse import Reuse
from xgenerator.ml.train import TrainResult, TrainSpec, train

SPEC = TrainSpec(
    task_type="classification",
    target="yes_no",
    features=FEATURES,
    params=dict(FAST),
    num_boost_round=12,
)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times the frame was prepared and the matrices built."""
    counts = {"prepare": 0, "matrices": 0}

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(train_module, "prepare", counted("prepare", prepare))
    monkeypatch.setattr(train_module, "_matrices", counted("matrices", train_module._matrices))
    return counts


def _predictions(result: TrainResult, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    return np.asarray(result.booster.inplace_predict(to_model_frame(frame, result.features)))


def _same(a: TrainResult, b: TrainResult, frame: pd.DataFrame) -> None:
    np.testing.assert_allclose(_predictions(a, frame), _predictions(b, frame), rtol=1e-6)
    assert a.metrics == b.metrics
    assert [f.to_dict() for f in a.features] == [f.to_dict() for f in b.features]
    assert (a.train_rows, a.validation_rows) == (b.train_rows, b.validation_rows)


def test_a_second_trial_trains_on_the_first_ones_data(builds: dict[str, int]) -> None:
    frame = make_frame(300)
    reuse = Reuse(frame)
    train(frame, SPEC, reuse=reuse)
    other = replace(SPEC, params={**FAST, "eta": 0.1, "max_depth": 2}, num_boost_round=8)
    reused = train(frame, other, reuse=reuse)
    assert builds == {"prepare": 1, "matrices": 1}
    _same(reused, train(frame, other), frame)


@pytest.mark.parametrize(
    "change",
    [
        {"params": {**FAST, "max_bin": 16}},  # the bins
        {"seed": 7},  # the split
        {"test_size": 0.3},
        {"features": FEATURES[:3]},  # the coding too
    ],
)
def test_a_spec_that_changes_the_data_gets_it_built_afresh(
    builds: dict[str, int], change: dict[str, Any]
) -> None:
    frame = make_frame(300)
    reuse = Reuse(frame)
    train(frame, SPEC, reuse=reuse)
    changed = replace(SPEC, **change)
    reused = train(frame, changed, reuse=reuse)
    assert builds["matrices"] == 2
    # the coding reads no parameter; a changed field of the spec proper is not told apart
    assert builds["prepare"] == (1 if "params" in change else 2)
    _same(reused, train(frame, changed), frame)


def test_another_frame_or_a_start_model_builds_its_own(builds: dict[str, int]) -> None:
    frame = make_frame(300)
    reuse = Reuse(frame)
    train(frame, SPEC, reuse=reuse)
    other = make_frame(300, seed=1)
    _same(train(other, SPEC, reuse=reuse), train(other, SPEC), other)
    assert builds == {"prepare": 3, "matrices": 3}
