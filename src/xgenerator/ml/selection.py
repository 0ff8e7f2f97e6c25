"""Which candidate columns a model should not use, and why: decided at training, reported.

A column is left out, in this order of checks:

* ``all_missing``: no value at all, nothing to learn (even when the user asked for it);
* ``constant``: a single distinct value, no split can use it;
* ``unique_per_row``: a text or integer column with a distinct value on (nearly) every row, an
  identifier: at least `MIN_ID_ROWS` rows and distinct values on at least `ID_SHARE` of the
  non-missing ones. A model would memorise it and learn nothing that carries over to new rows.
  Float columns are measurements, never identifiers; date-times are expanded, never identifiers;
* ``too_many_levels``: a text column with more distinct values than `max_category_levels`.

Only ``all_missing`` applies to columns the user listed by name (`forced`): naming a column is
how a user overrides the other rules. Everything here is measured on the rows with a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from xgenerator.ml.features import column_kind

# "role": the column is the weight, group or event column, never a feature
Reason = Literal["all_missing", "constant", "unique_per_row", "too_many_levels", "role"]

MIN_ID_ROWS = 50
ID_SHARE = 0.95


@dataclass(frozen=True)
class Excluded:
    """A column the model does not use; `detail` says it in a user's words."""

    name: str
    reason: Reason
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason, "detail": self.detail}


def screen(
    df: pd.DataFrame,
    names: Sequence[str],
    *,
    forced: bool,
    max_category_levels: int | None,
) -> tuple[list[str], list[Excluded]]:
    """The columns of `names` to use (in order), and the ones left out with their reason."""
    kept: list[str] = []
    excluded: list[Excluded] = []
    for name in names:
        reason = _reason(df[name], forced, max_category_levels)
        if reason is None:
            kept.append(name)
        else:
            excluded.append(Excluded(name, *reason))
    return kept, excluded


def _reason(
    series: pd.Series[Any], forced: bool, max_levels: int | None
) -> tuple[Reason, str] | None:
    present = int(series.count())
    if present == 0:
        return "all_missing", f"no value in {len(series):,} rows"
    if forced:
        return None
    if pd.api.types.is_float_dtype(series.dtype):
        # a measurement, never an identifier: only whether it is constant matters, which
        # min == max says in a third of the time of counting distinct values
        if series.min() == series.max():
            return "constant", f"the single value {str(series.min())[:50]!r} in {present:,} rows"
        return None
    distinct = int(series.nunique(dropna=True))
    if distinct == 1:
        value = series.dropna().iloc[0]
        return "constant", f"the single value {str(value)[:50]!r} in {present:,} rows"
    kind = column_kind(series)
    identifier_like = kind == "categorical" or _is_integer(series)
    if identifier_like and present >= MIN_ID_ROWS and distinct >= ID_SHARE * present:
        return "unique_per_row", f"{distinct:,} distinct values in {present:,} rows: an identifier"
    if kind == "categorical" and max_levels is not None and distinct > max_levels:
        return "too_many_levels", f"{distinct:,} distinct values, over the limit of {max_levels:,}"
    return None


def _is_integer(series: pd.Series[Any]) -> bool:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_integer_dtype(dtype):
        return True
    return bool(
        pd.api.types.is_object_dtype(dtype)
        and pd.api.types.infer_dtype(series, skipna=True) == "integer"
    )
