"""Online prediction without a DataFrame: JSON rows coded straight into a float32 array.

Building a pandas frame of object columns, then coercing it column by column, costs
milliseconds per request where XGBoost itself needs a fraction of one. For the common request
(numbers, category strings, nulls) the rows are coded here against the same frozen coding
`features.to_model_frame` uses: a number is a float32, a category its index in
`Feature.categories` (unseen or null: NaN, i.e. missing). XGBoost reads an array's
categorical columns as codes by the booster's own feature types, so the answer is the same
(tested against the frame path).

Anything else (a date-time feature, a string where a number belongs, an infinite or too large
number, a feature no row names) returns None: the caller takes the general frame path, which
gives the same numbers and the same errors as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xgenerator.ml.features import Feature, category_str

_NUMBER_TYPES = frozenset({int, float, bool, type(None)})


def records_to_array(
    records: Sequence[Mapping[str, object]], features: Sequence[Feature]
) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    """(rows, features) float32 in model column order, or None for the general path."""
    if any(f.kind == "datetime" for f in features):
        return None  # one feature, several model columns: pandas parses the date-times
    out = np.empty((len(records), len(features)), dtype=np.float32)
    for j, feature in enumerate(features):
        name = feature.name
        values = [row.get(name) for row in records]
        if all(v is None for v in values) and not any(name in row for row in records):
            return None  # a column no row names: the general path reports it missing
        if feature.kind == "numeric":
            if not all(type(v) in _NUMBER_TYPES for v in values):
                return None
            try:
                wide = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            except OverflowError:
                return None
            with np.errstate(over="ignore"):  # too large for float32: inf, refused below
                column = wide.astype(np.float32)
            if np.isinf(column).any():
                return None
            out[:, j] = column
        else:
            out[:, j] = _codes(values, feature.coding[0])
    return out


def _codes(values: list[object], index: dict[str, int]) -> list[float]:
    """Each value's frozen code (NaN: missing); a request repeats few distinct values, so
    each is coded once."""
    seen: dict[object, float] = {}
    out: list[float] = []
    for v in values:
        key = (type(v), v)  # 1 and True are equal keys but different categories
        code = seen.get(key)
        if code is None:
            missing = v is None or (isinstance(v, float) and v != v)
            code = np.nan if missing else float(index.get(category_str(v), np.nan))
            seen[key] = code
        out.append(code)
    return out
