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
    """(rows, features) float32 in model column order, or None for the general path.

    The numeric features are coded as one block (one array built, one cast, one check), not
    column by column: for one row the per-column NumPy calls cost more than the trees."""
    if not records or any(f.kind == "datetime" for f in features):
        return None  # a date-time: one feature, several model columns; pandas parses them
    named: set[str] = set().union(*records)
    if any(f.name not in named for f in features):
        return None  # a column no row names: the general path reports it missing
    out = np.empty((len(records), len(features)), dtype=np.float32)
    numeric = [j for j, f in enumerate(features) if f.kind == "numeric"]
    if numeric:
        block = _numbers(records, [features[j].name for j in numeric])
        if block is None:
            return None
        out[:, numeric] = block
    for j, feature in enumerate(features):
        if feature.kind != "numeric":
            out[:, j] = _codes([row.get(feature.name) for row in records], feature.coding[0])
    return out


def _numbers(
    records: Sequence[Mapping[str, object]], names: list[str]
) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    """The numeric columns as float32 (null: NaN); None if a value is not a JSON number or
    does not fit a float32."""
    table = [[row.get(name) for name in names] for row in records]
    kinds = {type(v) for values in table for v in values}
    if not kinds <= _NUMBER_TYPES:
        return None
    if type(None) in kinds:
        table = [[np.nan if v is None else v for v in values] for values in table]
    try:
        wide = np.array(table, dtype=np.float64)
    except OverflowError:
        return None
    with np.errstate(over="ignore"):  # too large for float32: inf, refused below
        block = wide.astype(np.float32)
    if np.isinf(block).any():
        return None
    return block


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
