"""Small synthetic data for the ml/ tests: strings, categories, missing values, odd labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from xgenerator.ml.bundle import ModelBundle, booster_bytes
from xgenerator.ml.train import TrainSpec, train

FEATURES = ["num", "cat", "flag", "count"]
FAST = {"nthread": 1, "max_depth": 3, "max_bin": 32}


def make_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Features of every kind, with nulls, and one target per label style."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=n)
    cat = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n)
    flag = rng.integers(0, 2, size=n).astype(bool)
    count = rng.integers(0, 5, size=n)
    score = num + (cat == "red") * 1.5 - flag * 0.5
    frame = pd.DataFrame(
        {
            "num": np.where(rng.random(n) < 0.1, np.nan, num),
            "cat": pd.Series(cat).where(rng.random(n) >= 0.1, None).astype("str"),
            "flag": flag,
            "count": pd.array(count, dtype="Int64"),
            "yes_no": np.where(score > 0.3, "yes", "no"),
            "digit": np.select([score < -0.3, score < 0.8], [3, 7], 9),
            "truth": score > 0.3,
            "value": score * 2.0 + rng.normal(scale=0.1, size=n),
        }
    )
    frame.loc[frame.index[:3], "count"] = pd.NA
    return frame


class RecordingHooks:
    """Records every round and a checkpoint every `checkpoint_every` rounds; raises
    `stop_with` after round `stop_at`, like a cancellation."""

    def __init__(
        self,
        stop_at: int | None = None,
        stop_with: BaseException | None = None,
        checkpoint_every: int = 1,
    ):
        self.rounds: list[tuple[int, int, dict[str, float]]] = []
        self.checkpoints: dict[int, bytes] = {}
        self.checkpoint_every = checkpoint_every
        self.stop_at = stop_at
        self.stop_with = stop_with or RuntimeError("cancelled")

    def on_round(self, round: int, total: int, metrics: dict[str, float]) -> None:
        self.rounds.append((round, total, metrics))
        if round == self.stop_at:
            raise self.stop_with

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        self.checkpoints[round] = booster_bytes(booster)

    def threads(self) -> int | None:
        return None


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def fast_params() -> dict[str, Any]:
    return dict(FAST)


@pytest.fixture
def frame_factory() -> Any:
    return make_frame


@pytest.fixture
def hooks_cls() -> type[RecordingHooks]:
    return RecordingHooks


@pytest.fixture
def features() -> list[str]:
    return list(FEATURES)


def tasks_frame(n: int = 400) -> pd.DataFrame:
    """Columns for every task: ranking (`rel`, `q`), survival (`time`, `event`), weights."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "y": x + rng.normal(scale=0.3, size=n),
            "rel": np.clip(np.round(x + 1), 0, 3).astype(int),
            "q": rng.integers(0, 25, size=n),
            "time": rng.exponential(np.exp(-x)),
            "event": rng.integers(0, 2, size=n),
            "w": rng.uniform(0, 2, size=n),
        }
    )


def fit(frame: pd.DataFrame, target: str, features: list[str], params: Any) -> ModelBundle:
    """A 6-round model of `target` (regression for `value`), bundled as the service stores it."""
    task: Any = "regression" if target == "value" else "classification"
    result = train(frame, TrainSpec(task, target, features, params, 6))
    return ModelBundle(result.booster, task, target, result.features, result.labels)
