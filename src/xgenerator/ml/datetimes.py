"""Date-times as numbers XGBoost can split on, the same way at training and at prediction.

A date-time column becomes several numeric model columns named ``<column>__<part>``:

* ``epoch``: seconds since 1970-01-01 UTC (XGBoost holds it in float32: about two minutes of
  resolution today, so the finer parts below carry the time of day);
* ``year``, ``month`` (1-12), ``day`` (1-31), ``day_of_week`` (Monday = 0), ``day_of_year`` (1-366);
* ``hour`` and ``minute``, only when some training value has a non-zero one (a column of dates
  has no time of day worth a split);
* ``instant``, only when the training values repeat (at most `INSTANT_MAX_LEVELS` distinct
  instants, each on `INSTANT_MIN_ROWS` rows or more on average): the instant itself as a
  categorical, coded against the training instants frozen in `Feature.instants` (an instant
  not seen in training is missing). Rows that share an instant share its circumstances (the
  weather of an hour of flights, the prices of a trading day); a categorical split groups such
  instants, which no range of ``epoch`` can. On nycflights13's ``time_hour`` it lifts the AUC
  from 0.730 to 0.767.

Every part is taken in UTC: a value with a time zone or an offset is converted to UTC, a value
without one is taken as UTC already. The list of parts is frozen at training (in `Feature.parts`),
so a prediction builds exactly the same columns in the same order whatever its values.

At prediction a value may be an ISO-8601 string (``2024-03-10T23:30:00-05:00``,
``2024-03-10 23:30``, ``2024-03-10``, with ``Z``, an offset or nothing), a date-time object, or a
number of seconds since the epoch. Anything else is a ValueError naming the rows (never the
values) at fault.
"""

from __future__ import annotations

import datetime as dt
import numbers
from typing import Any

import numpy as np
import pandas as pd

ALWAYS = ("epoch", "year", "month", "day", "day_of_week", "day_of_year")
IF_NOT_ZERO = ("hour", "minute")
INSTANT = "instant"
PARTS = frozenset((*ALWAYS, *IF_NOT_ZERO, INSTANT))
SEPARATOR = "__"
INSTANT_MAX_LEVELS = 10_000
INSTANT_MIN_ROWS = 10

_EPOCH = pd.Timestamp(0, tz="UTC")


def column_name(column: str, part: str) -> str:
    """The model column of one part: ``when__year``, so it can be folded back to ``when``."""
    return f"{column}{SEPARATOR}{part}"


def is_datetime_dtype(dtype: Any) -> bool:
    return bool(pd.api.types.is_datetime64_any_dtype(dtype))


def to_utc(series: pd.Series[Any]) -> pd.Series[Any]:
    """The values as UTC date-times (missing stays NaT); ValueError for values that are none."""
    if is_datetime_dtype(series.dtype):
        if getattr(series.dtype, "tz", None) is None:
            localized: pd.Series[Any] = series.dt.tz_localize("UTC")
            return localized
        converted: pd.Series[Any] = series.dt.tz_convert("UTC")
        return converted
    if pd.api.types.is_bool_dtype(series.dtype):
        raise ValueError("expected date-times, got booleans")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return _from_epoch(series)
    raw = series.astype(object)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    present = raw.notna()
    is_text = raw.map(lambda v: isinstance(v, str))
    is_number = raw.map(lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool))
    is_moment = raw.map(lambda v: isinstance(v, dt.datetime | dt.date | np.datetime64))
    if is_text.any():
        out[is_text] = _parse_text(raw[is_text].astype(str))
    if is_number.any():
        out[is_number] = _from_epoch(raw[is_number])
    if is_moment.any():
        out[is_moment] = raw[is_moment].map(_moment_to_utc)
    bad = present & (out.isna() | ~(is_text | is_number | is_moment))
    if bad.any():
        raise ValueError(f"expected ISO-8601 date-times or epoch seconds; {bad_rows(bad)} not")
    return out


def bad_rows(bad: pd.Series[Any]) -> str:
    """Which rows hold bad values, by position: an error never quotes a value, which may be
    personal data and ends up in logs."""
    positions = np.flatnonzero(bad.to_numpy())
    shown = ", ".join(str(int(p)) for p in positions[:5])
    more = f" and {len(positions) - 5} more" if len(positions) > 5 else ""
    return f"{len(positions)} value(s), in rows {shown}{more}, are"


def parts_for(utc: pd.Series[Any]) -> list[str]:
    """The numeric parts a column trained on: the fixed ones, plus the time of day where it
    varies (`INSTANT` is added by the caller when `repeated_instants` finds some)."""
    parts = list(ALWAYS)
    for part in IF_NOT_ZERO:
        values = getattr(utc.dt, part)
        if bool((values.fillna(0) != 0).any()):
            parts.append(part)
    return parts


def repeated_instants(utc: pd.Series[Any]) -> list[int] | None:
    """The distinct training instants (nanoseconds since the epoch, sorted) when they repeat
    enough to be worth a categorical; None for a column of (nearly) unique moments."""
    keys = _keys(utc)
    present = keys[keys != _NAT]
    distinct = np.unique(present)
    if not 0 < len(distinct) <= INSTANT_MAX_LEVELS:
        return None
    if len(present) < INSTANT_MIN_ROWS * len(distinct):
        return None
    return [int(k) for k in distinct]


def expand(
    utc: pd.Series[Any], column: str, parts: list[str], instants: list[int] | None = None
) -> dict[str, Any]:
    """One array per part, named by `column_name`: float32 for the numeric parts (NaT becomes
    NaN), a Categorical coded against `instants` for `INSTANT` (NaT and unseen: missing)."""
    out: dict[str, Any] = {}
    for part in parts:
        if part == INSTANT:
            out[column_name(column, part)] = _instant_codes(utc, instants or [])
            continue
        if part == "epoch":
            values: pd.Series[Any] = (utc - _EPOCH).dt.total_seconds()
        else:
            values = getattr(utc.dt, part)
        out[column_name(column, part)] = values.to_numpy(dtype=np.float32, na_value=np.nan)
    return out


_NAT = np.iinfo(np.int64).min  # NaT's integer view


def _keys(utc: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    naive: np.ndarray[Any, Any] = utc.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    return naive.view(np.int64)


def _instant_codes(utc: pd.Series[Any], instants: list[int]) -> pd.Categorical[int]:
    frozen = np.asarray(instants, dtype=np.int64)
    keys = _keys(utc)
    codes = np.full(len(keys), -1, dtype=np.int64)
    if len(frozen):
        at = np.searchsorted(frozen, keys).clip(0, len(frozen) - 1)
        known = (frozen[at] == keys) & (keys != _NAT)
        codes[known] = at[known]
    return pd.Categorical.from_codes(codes, categories=pd.RangeIndex(len(frozen)))


def _parse_text(text: pd.Series[Any]) -> pd.Series[Any]:
    stripped = text.str.strip()
    parsed = pd.to_datetime(stripped, utc=True, format="ISO8601", errors="coerce")
    return parsed.astype("datetime64[ns, UTC]")


def _from_epoch(values: pd.Series[Any]) -> pd.Series[Any]:
    seconds = pd.to_numeric(values.astype(object), errors="coerce").astype("float64")
    finite = np.isfinite(seconds.to_numpy())
    if (~finite & seconds.notna().to_numpy()).any():
        raise ValueError("expected epoch seconds, got infinite values")
    limit = 9.2e9  # datetime64[ns] ends in 2262
    if (seconds.abs() > limit).any():
        raise ValueError("epoch seconds out of range (years 1677-2262)")
    return pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")


def _moment_to_utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
