"""Validation metrics for every task, on the validation rows' predictions.

One place decides which metrics a task reports, so that training (and cross-validation)
report the same ones: classification and regression as in `ml.metrics`, ranking NDCG@k and
MAP@k per query, survival the concordance index, quantile regression pinball loss and
coverage. Sample weights, when given, weight every metric that has a per-row form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xgenerator.ml.metrics import Metrics, classification_metrics, regression_metrics
from xgenerator.ml.quantiles import quantile_metrics
from xgenerator.ml.ranking import ranking_metrics
from xgenerator.ml.survival import c_index

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Validation:
    """The validation rows: target, predictions and the role columns that apply."""

    target: Array
    predictions: Array
    weight: Array | None = None
    group: Array | None = None
    event: Array | None = None


def validation_metrics(
    task_type: str, params: dict[str, object], n_classes: int, rank_k: int, data: Validation
) -> Metrics:
    objective = params.get("objective")
    if task_type == "ranking" and data.group is not None:
        return ranking_metrics(data.target, data.predictions, data.group, rank_k)
    if task_type == "survival" and data.event is not None:
        pred = np.asarray(data.predictions, dtype=np.float64)
        # cox predicts a hazard ratio (higher = sooner), aft a time (higher = later)
        risk = -pred if objective == "survival:aft" else pred
        return {"c_index": c_index(data.target, data.event, risk)}
    if n_classes:
        return classification_metrics(data.target, data.predictions, n_classes, data.weight)
    alphas = params.get("quantile_alpha")
    if objective == "reg:quantileerror" and isinstance(alphas, list):
        return quantile_metrics(data.target, data.predictions, alphas, data.weight)
    return regression_metrics(data.target, data.predictions, data.weight)
