"""One conversion from a DataFrame to XGBoost input, shared by training and prediction.

A model only sees category *codes*. If training and prediction built their categoricals from
the data at hand, the same string could get a different code at prediction time and the
model would silently answer for another category. So the categories are frozen at training
time in `Feature.categories` and every later frame is coded against that list: an unseen
value becomes missing, never a wrong code.

Datetime, timedelta and period columns are refused (InvalidInput): a JSON prediction request
would send them as strings that could not be converted back the same way, so the user must
convert them to numbers (or strings) in the dataset first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from xgenerator.errors import InvalidInput

FeatureKind = Literal["numeric", "categorical"]

_NUMERIC_INFERRED = frozenset(
    {"integer", "floating", "mixed-integer-float", "boolean", "decimal", "empty"}
)
_TEMPORAL_INFERRED = frozenset({"datetime", "datetime64", "date", "time", "timedelta", "period"})


@dataclass(frozen=True)
class Feature:
    """A model input column; `categories` is the frozen coding of a categorical column."""

    name: str
    kind: FeatureKind
    categories: list[str] | None = None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "categories": self.categories}

    @classmethod
    def from_dict(cls, data: object) -> Feature:
        """Rebuild from stored JSON; a malformed entry is InvalidInput, not a KeyError."""
        if not isinstance(data, dict):
            raise InvalidInput("invalid feature description", {"feature": repr(data)[:200]})
        name, kind, categories = data.get("name"), data.get("kind"), data.get("categories")
        valid = isinstance(name, str) and (
            (kind == "numeric" and categories is None)
            or (
                kind == "categorical"
                and isinstance(categories, list)
                and all(isinstance(c, str) for c in categories)
            )
        )
        if not valid:
            raise InvalidInput("invalid feature description", {"feature": repr(data)[:200]})
        return cls(
            name=cast(str, name),
            kind=cast(FeatureKind, kind),
            categories=None if categories is None else list(cast(list[str], categories)),
        )


def category_str(value: object) -> str:
    """The string a raw value is coded as, so that 3, 3.0 and np.int64(3) are one category."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def infer_features(df: pd.DataFrame, names: Sequence[str]) -> list[Feature]:
    """Decide each column's kind from its dtype, and freeze the categories of categoricals."""
    _require_columns(df, names)
    features: list[Feature] = []
    unsupported: dict[str, str] = {}
    for name in names:
        series = df[name]
        kind = _kind(series)
        if kind == "temporal":
            unsupported[name] = f"{series.dtype} columns are not supported; convert to numbers"
        elif kind == "numeric":
            features.append(Feature(name, "numeric"))
        else:
            _, uniques = pd.factorize(series, use_na_sentinel=True)
            categories = sorted({category_str(v) for v in uniques})
            # An all-null column has nothing to code; as numeric it is simply all missing.
            if categories:
                features.append(Feature(name, "categorical", categories))
            else:
                features.append(Feature(name, "numeric"))
    if unsupported:
        raise InvalidInput("unsupported feature columns", {"columns": unsupported})
    return features


def to_model_frame(df: pd.DataFrame, features: Sequence[Feature]) -> pd.DataFrame:
    """The exact frame XGBoost sees: feature order, float32 numbers, frozen categoricals.

    Nulls stay missing (NaN) because XGBoost learns a default direction for them.
    """
    _require_columns(df, [f.name for f in features])
    columns: dict[str, Any] = {}
    invalid: dict[str, str] = {}
    for feature in features:
        series = df[feature.name]
        try:
            if feature.kind == "numeric":
                columns[feature.name] = _numeric(series)
            else:
                columns[feature.name] = _categorical(series, feature.categories or [])
        except ValueError as exc:
            invalid[feature.name] = str(exc)
    if invalid:
        raise InvalidInput("invalid values in feature columns", {"columns": invalid})
    return pd.DataFrame(columns)


def _require_columns(df: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in df.columns]
    if missing:
        raise InvalidInput("missing feature columns", {"missing": missing})
    duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()] if c in names})
    if duplicated:
        raise InvalidInput("duplicate feature columns", {"duplicated": duplicated})


def _kind(series: pd.Series[Any]) -> Literal["numeric", "categorical", "temporal"]:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if _is_temporal(dtype):
        return "temporal"
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    ):
        return "numeric"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in _NUMERIC_INFERRED:
        # Also catches an all-null column: it carries no categories to freeze.
        return "numeric"
    if inferred in _TEMPORAL_INFERRED:
        return "temporal"
    return "categorical"


def _is_temporal(dtype: Any) -> bool:
    return bool(
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype)
    )


def _numeric(series: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    dtype = series.dtype
    if _is_temporal(dtype):
        raise ValueError(f"expected numbers, got {dtype} values")
    if isinstance(dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)
    ):
        raw = series.astype(object)
        coerced = pd.to_numeric(raw, errors="coerce")
        bad = coerced.isna() & raw.notna()
        if bad.any():
            examples = ", ".join(repr(v) for v in pd.unique(raw[bad])[:3])
            raise ValueError(f"expected numbers, got {examples}")
        series = coerced
    if pd.api.types.is_complex_dtype(series.dtype):
        raise ValueError("expected real numbers, got complex values")
    with np.errstate(over="ignore"):  # overflow to inf is reported below, not as a warning
        values = series.to_numpy(dtype=np.float32, na_value=np.nan)
    if np.isinf(values).any():
        raise ValueError("infinite or too large values (float32 range)")
    return values


def _categorical(series: pd.Series[Any], categories: list[str]) -> pd.Categorical:
    # Code the distinct raw values once, then map codes: far cheaper than str() per row.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    index = {category: i for i, category in enumerate(categories)}
    lookup = np.array([index.get(category_str(v), -1) for v in uniques] + [-1], dtype=np.int64)
    # The missing-value code -1 picks the trailing -1: missing stays missing.
    return pd.Categorical.from_codes(lookup[codes], categories=pd.Index(categories, dtype=object))
