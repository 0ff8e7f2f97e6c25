"""What a training would cost, from its parameters, against a budget."""

from __future__ import annotations

import pytest

from xgenerator.errors import InvalidInput
from xgenerator.ml import cost

BUDGET = cost.Budget(max_leaves=100_000_000, max_histogram_bytes=2048 * 2**20)


def test_the_attacks_are_refused_and_ordinary_trainings_pass() -> None:
    # 1,000 classes x 100 parallel trees x depth 16: billions of leaves in round 1 alone.
    huge = {"max_depth": 16, "num_parallel_tree": 100}
    with pytest.raises(InvalidInput) as refused:
        cost.check(cost.estimate(huge, 50, 10, n_classes=1_000), BUDGET)
    assert refused.value.details is not None and refused.value.details["leaves"] > 10**9
    # lossguide, 65,536 leaves on 50 features: 12.8 GB of histograms.
    wide = {"grow_policy": "lossguide", "max_depth": 0, "max_leaves": 65_536}
    with pytest.raises(InvalidInput, match="histograms"):
        cost.check(cost.estimate(wide, 50, 10), BUDGET)
    # What people train: 48 classes x 200 rounds x depth 6, and 5,000 rounds x depth 10.
    cost.check(cost.estimate({"max_depth": 6}, 20, 200, n_classes=48), BUDGET)
    cost.check(cost.estimate({"max_depth": 10}, 100, 5_000), BUDGET)


def test_a_tree_has_at_most_a_leaf_per_row() -> None:
    deep = {"max_depth": 16}
    assert cost.estimate(deep, 3, 2, rows=40_000).leaves == 2 * 40_000
    assert cost.estimate(deep, 3, 2).leaves == 2 * 2**16


def test_leaves_per_tree() -> None:
    assert cost.leaves_per_tree({}) == 64
    assert cost.leaves_per_tree({"max_depth": 8, "max_leaves": 31}) == 31
    assert cost.leaves_per_tree({"max_depth": 0, "max_leaves": 255}) == 255


def test_the_worker_checks_again_once_the_classes_are_known() -> None:
    import pandas as pd

    from xgenerator.errors import TrainingFailed
    from xgenerator.ml.train import TrainSpec, train

    frame = pd.DataFrame({"x": [float(i % 7) for i in range(90)], "y": [i % 3 for i in range(90)]})
    # 10 rounds x depth 2 (4 leaves) = 40 leaves with one class; 120 with the three there are.
    budget = cost.Budget(max_leaves=100, max_histogram_bytes=2**30)
    spec = TrainSpec("classification", "y", ["x"], {"max_depth": 2}, 10, cost_budget=budget)
    with pytest.raises(TrainingFailed) as failed:
        train(frame, spec)
    assert failed.value.error_type == "TooExpensive"
    assert failed.value.details == {"leaves": 120, "limit": 100}
