"""Why a model predicts what it does: per-row SHAP contributions and per-feature importance.

Contributions are XGBoost's TreeSHAP (`Booster.predict(..., pred_contribs=True)`), in the
margin's units: per row, the contributions plus the bias add up to the raw margin (the
log-odds of the positive class for a binary classifier, of each class for a multi-class
one, the prediction itself for squared-error regression). A user sees one value per
*dataset* column: the model columns of a date-time (``when__year``, ``when__epoch``, ...) are
summed back into ``when``, which SHAP's additivity allows.

The bias is keyed ``bias`` (``_bias`` if a feature is called ``bias``, and so on).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb

from xgenerator.errors import InvalidInput
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.features import Feature, to_model_frame

ImportanceType = Literal["gain", "total_gain", "weight", "cover", "total_cover", "shap"]
GET_SCORE_TYPES = ("gain", "total_gain", "weight", "cover", "total_cover")
SHAP_SAMPLE_ROWS = 2_000
# rows x classes x (model columns + 1) contributions held at once by `shap_importance`
SHAP_SAMPLE_VALUES = 20_000_000
# rows x trees walked by `shap_importance`: TreeSHAP costs ~25 µs per row and depth-6 tree
# here (bench/explain.py), so this keeps the summary near a few seconds however many rounds;
# never fewer than SHAP_MIN_ROWS rows, though
SHAP_SAMPLE_TREE_ROWS = 100_000
SHAP_MIN_ROWS = 100


def bias_key(features: Sequence[Feature]) -> str:
    """``bias``, prefixed with ``_`` until no feature has that name."""
    names = {f.name for f in features}
    key = "bias"
    while key in names:
        key = f"_{key}"
    return key


def contributions(
    booster: xgb.Booster, features: Sequence[Feature], frame: pd.DataFrame
) -> np.ndarray[Any, Any]:
    """Folded contributions of the model frame `frame`: (n, features + 1), or
    (n, classes, features + 1) for a multi-class model; the last entry is the bias."""
    n_columns = sum(len(f.columns) for f in features)
    if len(frame) == 0:
        return np.empty((0, len(features) + 1), dtype=np.float64)
    matrix = xgb.DMatrix(frame, enable_categorical=True)
    raw = np.asarray(booster.predict(matrix, pred_contribs=True), dtype=np.float64)
    if raw.shape[-1] != n_columns + 1:
        raise ValueError(f"expected {n_columns + 1} contributions per row, got {raw.shape[-1]}")
    return fold(raw, features)


def fold(raw: np.ndarray[Any, Any], features: Sequence[Feature]) -> np.ndarray[Any, Any]:
    """Sum each feature's model columns (contiguous, in `features` order); keep the bias."""
    starts: list[int] = []
    offset = 0
    for feature in features:
        starts.append(offset)
        offset += len(feature.columns)
    starts.append(offset)  # the bias, a segment of its own
    folded: np.ndarray[Any, Any] = np.add.reduceat(raw, starts, axis=-1)
    return folded


def explain(bundle: ModelBundle, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per row: ``{feature: value, ..., "bias": value}``; for a multi-class model,
    ``{class: {feature: value, ..., "bias": value}}`` for every class (keys as strings)."""
    values = contributions(bundle.booster, bundle.features, to_model_frame(rows, bundle.features))
    keys = [*(f.name for f in bundle.features), bias_key(bundle.features)]
    if values.ndim == 2:
        return [dict(zip(keys, map(float, row), strict=True)) for row in values]
    classes = [str(c) for c in bundle.labels.classes] if bundle.labels else []
    return [
        {
            label: dict(zip(keys, map(float, per_class), strict=True))
            for label, per_class in zip(classes, row, strict=True)
        }
        for row in values
    ]


def shap_importance(
    booster: xgb.Booster,
    features: Sequence[Feature],
    rows: pd.DataFrame,
    *,
    max_rows: int = SHAP_SAMPLE_ROWS,
    max_values: int = SHAP_SAMPLE_VALUES,
    max_tree_rows: int = SHAP_SAMPLE_TREE_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean |contribution| per feature over at most `max_rows` of `rows` (a seeded sample),
    averaged over the classes of a multi-class model; ``{"values": {...}, "rows": n}``.

    A big model gets fewer rows (at least SHAP_MIN_ROWS): rows x trees stays under
    `max_tree_rows`, so the summary never costs more than a fraction of a long training,
    and the contributions held at once stay under `max_values` (a 1,000-class model would
    otherwise need gigabytes)."""
    classes = _n_classes(booster)
    width = classes * (sum(len(f.columns) for f in features) + 1)
    trees = max(1, booster.num_boosted_rounds() * classes)
    by_trees = max(SHAP_MIN_ROWS, max_tree_rows // trees)
    max_rows = max(1, min(max_rows, by_trees, max_values // width))
    if len(rows) > max_rows:
        rows = rows.sample(n=max_rows, random_state=seed)
    values = contributions(booster, features, to_model_frame(rows, features))
    magnitude = np.abs(values[..., :-1])
    if magnitude.ndim == 3:
        magnitude = magnitude.mean(axis=1)
    means = magnitude.mean(axis=0) if len(magnitude) else np.zeros(len(features))
    return {
        "values": {f.name: float(v) for f, v in zip(features, means, strict=True)},
        "rows": len(rows),
    }


def importance(booster: xgb.Booster, features: Sequence[Feature], kind: str) -> dict[str, float]:
    """XGBoost's split importance (`Booster.get_score`) by dataset column, every feature
    listed (0 when no tree splits on it). Date-time parts fold back into their column:
    totals and split counts add up; ``gain`` and ``cover`` (per split) are the folded total
    over the folded split count."""
    if kind not in GET_SCORE_TYPES:
        raise InvalidInput(f"unknown importance type {kind!r}", {"allowed": list(GET_SCORE_TYPES)})
    if kind in ("gain", "cover"):
        totals = importance(booster, features, f"total_{kind}")
        splits = importance(booster, features, "weight")
        return {k: totals[k] / splits[k] if splits[k] else 0.0 for k in totals}
    scores = booster.get_score(importance_type=kind)
    out: dict[str, float] = {}
    for feature in features:
        out[feature.name] = float(sum(_score(scores.get(c, 0.0)) for c in feature.columns))
    return out


def _n_classes(booster: xgb.Booster) -> int:
    """The number of output groups (classes of a multi-class model; 1 otherwise)."""
    config = json.loads(booster.save_config())
    return int(config["learner"]["learner_model_param"]["num_class"]) or 1


def _score(value: float | list[float]) -> float:
    # a vector-leaf model gives one score per target; their sum is the column's
    return float(sum(value)) if isinstance(value, list) else float(value)
