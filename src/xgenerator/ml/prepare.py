"""Training data as XGBoost needs it: rows with a target, model frame, encoded target.

Everything here fails with TrainingFailed: the data, not the request, is at fault, and
retrying the job would fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xgenerator.errors import InvalidInput, TrainingFailed
from xgenerator.ml import roles
from xgenerator.ml.features import Feature, infer_features, to_model_frame
from xgenerator.ml.labels import LabelEncoding
from xgenerator.ml.selection import Excluded, screen

if TYPE_CHECKING:
    from xgenerator.ml.train import InitModel, TrainSpec

MAX_CLASSES = 1000  # beyond this, multi:softprob's memory and time grow out of a job's reach


@dataclass
class PreparedData:
    """The model frame and target codes (classification) or values (regression).

    `excluded` are the candidate columns left out (`ml.selection`); `dropped_rows` counts the
    rows left out by cause: ``missing_target``, rows whose target is missing. `weight`,
    `group` (query codes) and `event` come from the spec's role columns (`ml.roles`).
    """

    frame: pd.DataFrame
    target: np.ndarray[Any, Any]
    features: list[Feature]
    labels: LabelEncoding | None
    excluded: list[Excluded] = field(default_factory=list)
    dropped_rows: dict[str, int] = field(default_factory=dict)
    weight: np.ndarray[Any, Any] | None = None
    group: np.ndarray[Any, Any] | None = None
    event: np.ndarray[Any, Any] | None = None


def prepare(df: pd.DataFrame, spec: TrainSpec, init: InitModel | None) -> PreparedData:
    """Drop rows without a target, then code features and target (the parent's, if any)."""
    missing = [c for c in [*spec.features, spec.target, *role_columns(spec)] if c not in df.columns]
    if missing:
        raise TrainingFailed("MissingColumns", "missing columns", {"missing": missing})
    if len(df) == 0:
        raise TrainingFailed("NoUsableRows", "the dataset has no rows")
    target = df[spec.target]
    keep = target.notna().to_numpy()
    if not keep.any():
        raise TrainingFailed("EmptyTarget", f"target column {spec.target!r} has only nulls")
    dropped = {"missing_target": int((~keep).sum())}
    kept = df.loc[keep, role_columns(spec)]
    df = df.loc[keep, list(spec.features)]
    target = target[keep]
    if len(df) < 2:
        raise TrainingFailed(
            "TooFewRows", "at least 2 rows with a target are needed", {"rows": len(df)}
        )
    try:
        features, excluded = _features(df, spec, init)
        frame = to_model_frame(df, features)
        if spec.task_type == "classification":
            labels = _labels(target, init)
            data = PreparedData(frame, labels.encode(target), features, labels, excluded, dropped)
        else:
            if init is not None and init.labels is not None:
                raise TrainingFailed("IncompatibleModel", "the parent model is a classifier")
            data = PreparedData(frame, _numeric_target(target), features, None, excluded, dropped)
        _read_roles(data, kept, spec)
        return data
    except InvalidInput as exc:
        raise TrainingFailed("InvalidData", exc.message, exc.details) from exc


def role_columns(spec: TrainSpec) -> list[str]:
    """The weight, group and event columns the spec names."""
    named = (spec.weight_column, spec.group_column, spec.event_column)
    return [c for c in named if c is not None]


def _read_roles(data: PreparedData, df: pd.DataFrame, spec: TrainSpec) -> None:
    if spec.weight_column is not None:
        data.weight = roles.weights(df[spec.weight_column])
    if spec.group_column is not None:
        data.group = roles.groups(df[spec.group_column])
    if spec.event_column is not None:
        data.event = roles.events(df[spec.event_column])


def _features(
    df: pd.DataFrame, spec: TrainSpec, init: InitModel | None
) -> tuple[list[Feature], list[Excluded]]:
    if init is None:
        return select_features(df, spec)
    # A retrain gives the parent's features; a resumed job the subset it selected at first.
    names = [f.name for f in init.features]
    if names != [n for n in spec.features if n in set(names)]:
        raise TrainingFailed(
            "IncompatibleFeatures",
            "features differ from the parent model's",
            {"expected": names, "given": list(spec.features)},
        )
    return init.features, list(init.excluded)


def select_features(df: pd.DataFrame, spec: TrainSpec) -> tuple[list[Feature], list[Excluded]]:
    """The features of a fresh model on `df` (rows with a target), and the columns left out."""
    names, excluded = screen(
        df,
        spec.features,
        forced=spec.features_forced,
        max_category_levels=spec.max_category_levels,
    )
    if not names:
        raise TrainingFailed(
            "NoFeatures",
            "no usable feature column is left",
            {"excluded_features": [e.to_dict() for e in excluded]},
        )
    if not spec.features_forced:  # a candidate column by default, taken by its role instead
        for field_name in roles.ROLE_FIELDS:
            column = getattr(spec, field_name)
            if column is not None:
                excluded.append(Excluded(column, "role", f"used as {field_name}"))
    return infer_features(df, names), excluded


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


@dataclass(frozen=True)
class Encoding:
    """What a fresh training on some data derives besides the booster."""

    features: list[Feature]
    labels: LabelEncoding | None
    excluded: list[Excluded]


def fresh_encoding(df: pd.DataFrame, spec: TrainSpec) -> Encoding:
    """The features and labels a fresh training on `df` derives: what a bare checkpoint
    (a booster without metadata) needs beside it to resume on the same data."""
    keep = df[spec.target].notna().to_numpy()
    try:
        features, excluded = select_features(df.loc[keep, list(spec.features)], spec)
    except InvalidInput as exc:
        raise TrainingFailed("InvalidData", exc.message, exc.details) from exc
    labels = None
    if spec.task_type == "classification":
        labels = LabelEncoding.fit(df.loc[keep, spec.target])
    return Encoding(features, labels, excluded)
