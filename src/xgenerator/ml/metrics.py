"""Validation metrics a user compares models by.

Values are plain floats or None, never NaN: they go into JSON columns and API responses, where
NaN is not valid JSON. A metric that is undefined on this validation set (ROC AUC when a class
is absent from it, R2 with one row) is None rather than a number that looks meaningful.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

Metrics = dict[str, float | None]


def classification_metrics(
    y_true: np.ndarray[Any, Any] | list[int],
    proba: np.ndarray[Any, Any],
    n_classes: int,
    weights: np.ndarray[Any, Any] | None = None,
) -> Metrics:
    """Accuracy, precision/recall/F1 (binary: positive class; multiclass: macro), AUC, logloss.

    `y_true` holds class codes 0..n_classes-1; `proba` is (n,) positive-class probabilities
    for binary:logistic or (n, n_classes) for multi:softprob. `weights` weight every metric.
    """
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    p = _probability_matrix(np.asarray(proba), n_classes)
    if len(y) == 0 or (w is not None and not w.sum() > 0):
        return dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc", "logloss"))
    pred = p.argmax(axis=1)
    labels = list(range(n_classes))
    if n_classes == 2:
        scores = skm.precision_recall_fscore_support(
            y, pred, labels=labels, average="binary", pos_label=1, zero_division=0, sample_weight=w
        )
    else:
        # Macro over the classes present in truth or prediction, as sklearn does by default.
        scores = skm.precision_recall_fscore_support(
            y, pred, average="macro", zero_division=0, sample_weight=w
        )
    precision, recall, f1, _ = scores
    return {
        "accuracy": _clean(skm.accuracy_score(y, pred, sample_weight=w)),
        "precision": _clean(precision),
        "recall": _clean(recall),
        "f1": _clean(f1),
        "roc_auc": _roc_auc(y, p, n_classes, w),
        "logloss": _clean(skm.log_loss(y, p, labels=labels, sample_weight=w)),
    }


def regression_metrics(
    y_true: np.ndarray[Any, Any] | list[float],
    pred: np.ndarray[Any, Any] | list[float],
    weights: np.ndarray[Any, Any] | None = None,
) -> Metrics:
    """RMSE, MAE and R2 (None with fewer than two rows, where R2 is undefined), weighted by
    `weights` if given."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if len(y) == 0 or (w is not None and not w.sum() > 0):
        return {"rmse": None, "mae": None, "r2": None}
    return {
        "rmse": _clean(skm.root_mean_squared_error(y, p, sample_weight=w)),
        "mae": _clean(skm.mean_absolute_error(y, p, sample_weight=w)),
        "r2": _clean(skm.r2_score(y, p, sample_weight=w)) if len(y) >= 2 else None,
    }


def _probability_matrix(proba: np.ndarray[Any, Any], n_classes: int) -> np.ndarray[Any, Any]:
    """(n, k) float64 rows summing to 1: XGBoost's float32 sums drift enough for sklearn."""
    p = proba.astype(np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.shape[1] != n_classes:
        raise ValueError(f"expected {n_classes} probability columns, got {p.shape[1]}")
    p = np.clip(p, 0.0, 1.0)
    sums = p.sum(axis=1, keepdims=True)
    normalized: np.ndarray[Any, Any] = np.divide(
        p, sums, out=np.full_like(p, 1.0 / n_classes), where=sums > 0
    )
    return normalized


def _roc_auc(
    y: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    n_classes: int,
    w: np.ndarray[Any, Any] | None = None,
) -> float | None:
    if len(np.unique(y)) < n_classes:
        return None
    if n_classes == 2:
        return _clean(skm.roc_auc_score(y, p[:, 1], sample_weight=w))
    return _clean(
        skm.roc_auc_score(
            y,
            p,
            multi_class="ovr",
            average="macro",
            labels=list(range(n_classes)),
            sample_weight=w,
        )
    )


def _clean(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
