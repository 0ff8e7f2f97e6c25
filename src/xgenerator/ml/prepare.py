"""Training data as XGBoost needs it: rows with a target, model frame, encoded target.

Everything here fails with TrainingFailed: the data, not the request, is at fault, and
retrying the job would fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml.features import Feature, infer_features, to_model_frame
from xgenerator.ml.labels import LabelEncoding

if TYPE_CHECKING:
    from xgenerator.ml.train import InitModel, TrainSpec

MAX_CLASSES = 1000  # beyond this, multi:softprob's memory and time grow out of a job's reach


@dataclass
class PreparedData:
    """The model frame and target codes (classification) or values (regression)."""

    frame: pd.DataFrame
    target: np.ndarray[Any, Any]
    features: list[Feature]
    labels: LabelEncoding | None


def prepare(df: pd.DataFrame, spec: TrainSpec, init: InitModel | None) -> PreparedData:
    """Drop rows without a target, then code features and target (the parent's, if any)."""
    missing = [c for c in [*spec.features, spec.target] if c not in df.columns]
    if missing:
        raise TrainingFailed("MissingColumns", "missing columns", {"missing": missing})
    if len(df) == 0:
        raise TrainingFailed("NoUsableRows", "the dataset has no rows")
    target = df[spec.target]
    keep = target.notna().to_numpy()
    if not keep.any():
        raise TrainingFailed("EmptyTarget", f"target column {spec.target!r} has only nulls")
    df = df.loc[keep, list(spec.features)]
    target = target[keep]
    if len(df) < 2:
        raise TrainingFailed(
            "TooFewRows", "at least 2 rows with a target are needed", {"rows": len(df)}
        )
    try:
        features = _features(df, spec, init)
        frame = to_model_frame(df, features)
        if spec.task_type == "classification":
            labels = _labels(target, init)
            return PreparedData(frame, labels.encode(target), features, labels)
        if init is not None and init.labels is not None:
            raise TrainingFailed("IncompatibleModel", "the parent model is a classifier")
        return PreparedData(frame, _numeric_target(target), features, None)
    except InvalidInput as exc:
        raise TrainingFailed("InvalidData", exc.message, exc.details) from exc


def _features(df: pd.DataFrame, spec: TrainSpec, init: InitModel | None) -> list[Feature]:
    if init is None:
        return infer_features(df, spec.features)
    if [f.name for f in init.features] != list(spec.features):
        raise TrainingFailed(
            "IncompatibleFeatures",
            "features differ from the parent model's",
            {"expected": [f.name for f in init.features], "given": list(spec.features)},
        )
    return init.features


def _labels(target: pd.Series[Any], init: InitModel | None) -> LabelEncoding:
    if init is not None:
        if init.labels is None:
            raise TrainingFailed("IncompatibleModel", "the parent model is a regressor")
        unknown = init.labels.unknown(target)
        if unknown:
            raise TrainingFailed(
                "IncompatibleLabels",
                "the target has classes the parent model does not know",
                {"unknown": unknown[:20], "known": init.labels.classes[:20]},
            )
        return init.labels
    labels = LabelEncoding.fit(target)
    if len(labels.classes) < 2:
        raise TrainingFailed(
            "SingleClass", "the target has a single class", {"classes": labels.classes}
        )
    if len(labels.classes) > MAX_CLASSES:
        raise TrainingFailed(
            "TooManyClasses",
            f"the target has more than {MAX_CLASSES} classes; is it a regression target?",
            {"classes": len(labels.classes)},
        )
    return labels


def _numeric_target(target: pd.Series[Any]) -> np.ndarray[Any, Any]:
    if pd.api.types.is_bool_dtype(target.dtype) or pd.api.types.is_numeric_dtype(target.dtype):
        values = target.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(target.astype(object), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        examples = [repr(v) for v in pd.unique(target[bad].astype(object))[:3]]
        raise TrainingFailed(
            "NonNumericTarget", "the regression target must be numbers", {"examples": examples}
        )
    return values


def fresh_encoding(df: pd.DataFrame, spec: TrainSpec) -> tuple[list[Feature], LabelEncoding | None]:
    """The features and labels a fresh training on `df` derives: what a bare checkpoint
    (a booster without metadata) needs beside it to resume on the same data."""
    keep = df[spec.target].notna().to_numpy()
    features = infer_features(df.loc[keep, list(spec.features)], spec.features)
    if spec.task_type != "classification":
        return features, None
    return features, LabelEncoding.fit(df.loc[keep, spec.target])
