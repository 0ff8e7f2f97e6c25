"""External-memory training (ml.external) against in-memory training on the same data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from xgenerator.errors import TrainingFailed
from xgenerator.ml.external import is_validation, train_external
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec, train


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(0, 10, size=rows)
    color = rng.choice(["red", "green", "blue", "violet"], size=rows)
    score = x1 + 0.4 * x2 + (color == "red") * 1.5 + rng.normal(scale=1.0, size=rows)
    out = pd.DataFrame(
        {"x1": x1, "x2": x2, "color": color, "label": np.where(score > 2.5, "yes", "no")}
    )
    out.loc[::13, "x2"] = np.nan
    return out


def batches_of(data: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(data), size):
        yield data.iloc[start : start + size].reset_index(drop=True)


SPEC = TrainSpec(
    task_type="classification",
    target="label",
    features=["x1", "x2", "color"],
    params={"max_depth": 4, "eta": 0.2},
    num_boost_round=40,
)


def test_same_quality_as_in_memory(tmp_path: Path) -> None:
    data, test = frame(20_000, 0), frame(20_000, 1)
    passes: list[int] = []

    def batches() -> Iterator[pd.DataFrame]:
        passes.append(1)
        return batches_of(data, 2_500)

    external = train_external(batches, SPEC, cache_prefix=str(tmp_path / "cache"))
    memory = train(data, SPEC)
    truth = (test["label"] == "yes").to_numpy()

    def auc(result: object) -> float:
        x = to_model_frame(test, result.features)  # type: ignore[attr-defined]
        return float(roc_auc_score(truth, result.booster.inplace_predict(x)))  # type: ignore[attr-defined]

    assert abs(auc(external.result) - auc(memory)) < 0.005
    assert external.result.num_boost_round == 40
    assert len(external.result.history) == 40
    # about a fifth validates; every labelled row is used once
    assert external.result.validation_rows + external.result.train_rows == 20_000
    assert 3_600 < external.result.validation_rows < 4_400
    color = next(f for f in external.result.features if f.name == "color")
    assert color.categories == ["blue", "green", "red", "violet"]
    assert len(passes) >= 3  # scan, validation, and XGBoost's own passes


def test_the_validation_set_is_bounded(tmp_path: Path) -> None:
    data = frame(2_000, 2)
    result = train_external(
        lambda: batches_of(data, 500),
        replace(SPEC, num_boost_round=3),
        cache_prefix=str(tmp_path / "c"),
        validation_cap=100,
    ).result
    assert result.validation_rows == 100
    assert result.train_rows == 1_900


def test_the_split_is_the_same_whatever_the_batches() -> None:
    positions = np.arange(10_000, dtype=np.uint64)
    whole = is_validation(positions, 0.2, 42)
    pieces = np.concatenate(
        [is_validation(positions[i : i + 7], 0.2, 42) for i in range(0, 10_000, 7)]
    )
    assert (whole == pieces).all()
    assert 0.18 < whole.mean() < 0.22
    assert (whole != is_validation(positions, 0.2, 7)).any()


def test_a_single_class_fails_clearly(tmp_path: Path) -> None:
    data = frame(1_000, 3).assign(label="yes")
    with pytest.raises(TrainingFailed) as caught:
        train_external(lambda: batches_of(data, 300), SPEC, cache_prefix=str(tmp_path / "c"))
    assert caught.value.error_type == "SingleClass"
