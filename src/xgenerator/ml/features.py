"""One conversion from a DataFrame to XGBoost input, shared by training and prediction.

A model only sees category *codes*. If training and prediction built their categoricals from
the data at hand, the same string could get a different code at prediction time and the
model would silently answer for another category. So the categories are frozen at training
time in `Feature.categories` and every later frame is coded against that list: an unseen
value becomes missing, never a wrong code.

A date-time column is one Feature of kind "datetime" but several model columns, its parts
(`ml.datetimes`): the parts are frozen at training in `Feature.parts`, like categories.
Timedelta and period columns are refused (InvalidInput): no upload produces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from xgenerator.errors import InvalidInput
from xgenerator.ml import datetimes

FeatureKind = Literal["numeric", "categorical", "datetime"]

_NUMERIC_INFERRED = frozenset(
    {"integer", "floating", "mixed-integer-float", "boolean", "decimal", "empty"}
)
_DATETIME_INFERRED = frozenset({"datetime", "datetime64", "date"})
_TEMPORAL_INFERRED = frozenset({"time", "timedelta", "period"})


@dataclass(frozen=True)
class Feature:
    """A dataset column the model uses.

    `categories` is the frozen coding of a categorical column; `parts` the frozen date-time
    parts of a datetime column, which the model sees as the columns `columns` names;
    `instants` the frozen training instants its `instant` part is coded against.
    """

    name: str
    kind: FeatureKind
    categories: list[str] | None = None
    parts: list[str] | None = None
    instants: list[int] | None = None

    @cached_property
    def coding(self) -> tuple[dict[str, int], pd.CategoricalDtype]:
        """Category -> code, and the dtype of the coded column: built once per loaded model,
        so coding a column of 50,000 levels costs O(rows), not O(levels), per request."""
        categories = self.categories or []
        index = {category: i for i, category in enumerate(categories)}
        return index, pd.CategoricalDtype(pd.Index(categories, dtype=object))

    @property
    def columns(self) -> list[str]:
        """The model columns this feature becomes, in order."""
        if self.kind == "datetime":
            return [datetimes.column_name(self.name, p) for p in self.parts or []]
        return [self.name]

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "categories": self.categories,
        }
        if self.kind == "datetime":
            data.update(parts=self.parts, columns=self.columns)
        if self.instants is not None:
            data["instants"] = self.instants
        return data

    @classmethod
    def from_dict(cls, data: object) -> Feature:
        """Rebuild from stored JSON; a malformed entry is InvalidInput, not a KeyError."""
        if not isinstance(data, dict):
            raise InvalidInput("invalid feature description", {"feature": repr(data)[:200]})
        name, kind, categories = data.get("name"), data.get("kind"), data.get("categories")
        parts, instants = data.get("parts"), data.get("instants")
        valid = isinstance(name, str) and (
            (kind == "numeric" and categories is None)
            or (
                kind == "categorical"
                and isinstance(categories, list)
                and all(isinstance(c, str) for c in categories)
            )
            or (
                kind == "datetime"
                and categories is None
                and isinstance(parts, list)
                and bool(parts)
                and all(p in datetimes.PARTS for p in parts)
                and len(set(parts)) == len(parts)
                and (datetimes.INSTANT in parts) == isinstance(instants, list)
                and all(type(i) is int for i in instants or [])
            )
        )
        if not valid:
            raise InvalidInput("invalid feature description", {"feature": repr(data)[:200]})
        return cls(
            name=cast(str, name),
            kind=cast(FeatureKind, kind),
            categories=None if categories is None else list(cast(list[str], categories)),
            parts=list(cast(list[str], parts)) if kind == "datetime" else None,
            instants=list(cast(list[int], instants)) if isinstance(instants, list) else None,
        )


def model_columns(features: Sequence[Feature]) -> list[str]:
    """The columns of the model frame (and the booster's feature names), in order."""
    return [column for feature in features for column in feature.columns]


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
        kind = column_kind(series)
        if kind == "temporal":
            unsupported[name] = f"{series.dtype} columns are not supported; convert to numbers"
        elif kind == "datetime":
            try:
                utc = datetimes.to_utc(series)
            except ValueError as exc:
                unsupported[name] = str(exc)
                continue
            parts, instants = datetimes.parts_for(utc), datetimes.repeated_instants(utc)
            if instants is not None:
                parts.append(datetimes.INSTANT)
            features.append(Feature(name, "datetime", parts=parts, instants=instants))
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
    _check_unique_columns(features)
    return features


def _check_unique_columns(features: list[Feature]) -> None:
    """A derived `when__year` must not clash with a dataset column of that name."""
    seen: set[str] = set()
    clashes: set[str] = set()
    for column in model_columns(features):
        (clashes if column in seen else seen).add(column)
    if clashes:
        raise InvalidInput(
            "date-time parts clash with columns of the same name; rename them",
            {"columns": sorted(clashes)},
        )


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
            elif feature.kind == "datetime":
                utc = datetimes.to_utc(series)
                columns.update(
                    datetimes.expand(utc, feature.name, feature.parts or [], feature.instants)
                )
            else:
                columns[feature.name] = _categorical(series, *feature.coding)
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


def column_kind(
    series: pd.Series[Any],
) -> Literal["numeric", "categorical", "datetime", "temporal"]:
    """How a column is coded: by dtype, else by the Python values of an object column."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if datetimes.is_datetime_dtype(dtype):
        return "datetime"
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
    if inferred in _DATETIME_INFERRED:
        return "datetime"
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
            raise ValueError(f"expected numbers; {datetimes.bad_rows(bad)} not")
        series = coerced
    if pd.api.types.is_complex_dtype(series.dtype):
        raise ValueError("expected real numbers, got complex values")
    with np.errstate(over="ignore"):  # overflow to inf is reported below, not as a warning
        values = series.to_numpy(dtype=np.float32, na_value=np.nan)
    if np.isinf(values).any():
        raise ValueError("infinite or too large values (float32 range)")
    return values


def _categorical(
    series: pd.Series[Any], index: dict[str, int], dtype: pd.CategoricalDtype
) -> pd.Categorical:
    # Code the distinct raw values once, then map codes: far cheaper than str() per row.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    lookup = np.array([index.get(category_str(v), -1) for v in uniques] + [-1], dtype=np.int64)
    # The missing-value code -1 picks the trailing -1: missing stays missing.
    return pd.Categorical.from_codes(lookup[codes], dtype=dtype)
