"""Columns with a role other than feature or target: sample weight, query group, event.

They are read from the rows that have a target, never used as features, and must be complete:
a missing weight or query id has no sensible default, and dropping the row would silently
train on other data than asked. Each problem is a TrainingFailed naming the column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xgenerator.errors import TrainingFailed
from xgenerator.ml import survival

if TYPE_CHECKING:
    from xgenerator.ml.prepare import PreparedData
    from xgenerator.ml.train import TrainSpec

ROLE_FIELDS = ("weight_column", "group_column", "event_column")

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


def weights(series: pd.Series[Any]) -> FloatArray:
    """Sample weights: finite numbers >= 0, not all zero."""
    values = _numbers(series, "weight", "InvalidWeight")
    negative = values < 0
    if negative.any():
        raise TrainingFailed(
            "InvalidWeight",
            f"weight column {series.name!r} has negative values",
            {"rows": int(negative.sum()), "examples": [float(v) for v in values[negative][:3]]},
        )
    if not (values > 0).any():
        raise TrainingFailed("InvalidWeight", f"weight column {series.name!r} is all zeros")
    return values


def groups(series: pd.Series[Any]) -> IntArray:
    """Query ids as consecutive codes in order of the ids (any type, no missing value)."""
    missing = series.isna().to_numpy()
    if missing.any():
        raise TrainingFailed(
            "MissingGroup",
            f"group column {series.name!r} has missing values",
            {"rows": int(missing.sum())},
        )
    codes, _ = pd.factorize(series, sort=True)
    return codes.astype(np.int64)


def events(series: pd.Series[Any]) -> FloatArray:
    """Event indicators as floats (validated as 0/1 with the times, `survival.check_survival`)."""
    return _numbers(series, "event", "InvalidEvent")


def _numbers(series: pd.Series[Any], role: str, error_type: str) -> FloatArray:
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        examples = [repr(v) for v in pd.unique(series[bad].astype(object))[:3]]
        raise TrainingFailed(
            error_type,
            f"{role} column {series.name!r} must hold numbers, without missing values",
            {"rows": int(bad.sum()), "examples": examples},
        )
    return np.asarray(values, dtype=np.float64)


def role_errors(spec: TrainSpec) -> dict[str, str]:
    """Role columns: required by their task, distinct, neither target nor feature."""
    errors: dict[str, str] = {}
    if spec.task_type == "ranking" and spec.group_column is None:
        errors["group_column"] = "is required for ranking"
    if spec.task_type != "ranking" and spec.group_column is not None:
        errors["group_column"] = "only for ranking"
    if spec.task_type == "survival" and spec.event_column is None:
        errors["event_column"] = "is required for survival"
    if spec.task_type != "survival" and spec.event_column is not None:
        errors["event_column"] = "only for survival"
    if spec.task_type == "ranking" and spec.weight_column is not None:
        errors["weight_column"] = "is not supported for ranking (XGBoost weighs whole queries)"
    seen: set[str] = set()
    for field_name in ROLE_FIELDS:
        column = getattr(spec, field_name)
        if column is None:
            continue
        if column == spec.target or column in spec.features or column in seen:
            errors[field_name] = "must be a column that is neither target, feature nor other role"
        seen.add(column)
    if not 1 <= spec.rank_k <= 1000:
        errors["rank_k"] = "must be in [1, 1000]"
    return errors


def dmatrix_fields(data: PreparedData, rows: Any, params: dict[str, object]) -> dict[str, Any]:
    """The DMatrix label, weight and query fields of the rows at positions `rows`."""
    fields: dict[str, Any] = {}
    if data.event is not None:
        objective = str(params["objective"])
        fields.update(survival.label_fields(objective, data.target[rows], data.event[rows]))
    else:
        fields["label"] = data.target[rows]
    if data.weight is not None:
        fields["weight"] = data.weight[rows]
    if data.group is not None:
        fields["qid"] = data.group[rows]
    return fields
