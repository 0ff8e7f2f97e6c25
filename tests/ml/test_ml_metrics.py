"""Validation metrics agree with scikit-learn and stay JSON-safe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from xgenerator.ml.metrics import classification_metrics, regression_metrics

RNG = np.random.default_rng(1)


def test_binary_metrics_match_sklearn() -> None:
    y = RNG.integers(0, 2, size=50)
    p = np.clip(y * 0.6 + RNG.random(50) * 0.4, 0, 1).astype(np.float32)
    out = classification_metrics(y, p, 2)
    pred = (p >= 0.5).astype(int)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert out["logloss"] == pytest.approx(skm.log_loss(y, p.astype(np.float64)), rel=1e-5)
    assert all(type(v) is float for v in out.values())


def test_multiclass_metrics_match_sklearn() -> None:
    y = RNG.integers(0, 3, size=60)
    raw = RNG.random((60, 3)) + np.eye(3)[y]
    p = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)  # float32 rows drift from 1
    out = classification_metrics(y, p, 3)
    p64 = p.astype(np.float64) / p.astype(np.float64).sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p64, multi_class="ovr"))
    assert out["logloss"] == pytest.approx(skm.log_loss(y, p64))


def test_auc_is_none_when_a_class_is_absent_from_the_truth() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    out = classification_metrics(np.array([0, 1]), p, 3)
    assert out["roc_auc"] is None
    assert out["accuracy"] == 1.0
    binary = classification_metrics(np.array([1, 1]), np.array([0.9, 0.4]), 2)
    assert binary["roc_auc"] is None
    json.dumps(out, allow_nan=False)
    json.dumps(binary, allow_nan=False)


def test_regression_metrics_match_sklearn() -> None:
    y = RNG.normal(size=40)
    pred = y + RNG.normal(scale=0.3, size=40)
    out = regression_metrics(y, pred)
    assert out["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert out["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_undefined_metrics_are_none_not_nan() -> None:
    assert regression_metrics([1.0], [2.0]) == {"rmse": 1.0, "mae": 1.0, "r2": None}
    assert regression_metrics([], [])["rmse"] is None
    empty = classification_metrics(np.array([], dtype=int), np.empty((0,)), 2)
    assert set(empty.values()) == {None}
