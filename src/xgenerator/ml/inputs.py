"""The shapes a prediction request's rows come in, turned into one frame of raw columns.

JSON rows arrive as MLflow's serving formats (`dataframe_records`, `dataframe_split`,
`instances`, `inputs`) or XGenerator's `rows`; bodies may also be CSV or Parquet. Every shape
becomes the same raw frame, which `features.to_model_frame` then codes against the model's
frozen features, so every format predicts exactly the same numbers for the same rows.

Error messages name rows and columns, never a row's values: a request body may be personal data
and error messages end up in logs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from xgenerator.errors import InvalidInput

PARQUET_MAGIC = b"PAR1"


def from_split(columns: Sequence[str], data: Sequence[Sequence[object]]) -> list[dict[str, Any]]:
    """MLflow's `dataframe_split` ({columns, data}): one list of values per row."""
    if len(set(columns)) != len(columns):
        raise InvalidInput("duplicate column names in 'columns'")
    bad = [i for i, row in enumerate(data) if len(row) != len(columns)]
    if bad:
        raise InvalidInput(
            "each row of 'data' must have one value per column",
            {"rows": bad[:10], "columns": len(columns)},
        )
    return [dict(zip(columns, row, strict=True)) for row in data]


def from_instances(
    instances: Sequence[Mapping[str, object] | Sequence[object]], feature_names: Sequence[str]
) -> list[dict[str, Any]]:
    """MLflow's `instances` / `inputs`: objects, or lists of values in the model's feature order."""
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    for i, item in enumerate(instances):
        if isinstance(item, Mapping):
            records.append(dict(item))
        elif len(item) == len(feature_names):
            records.append(dict(zip(feature_names, item, strict=True)))
        else:
            bad.append(i)
    if bad:
        raise InvalidInput(
            "a row given as a list must have one value per feature, in the model's order",
            {"rows": bad[:10], "features": list(feature_names)},
        )
    return records


def from_columns(columns: Mapping[str, Sequence[object]]) -> list[dict[str, Any]]:
    """MLflow's columnar `inputs`: {column: [value per row]}."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput("every column of 'inputs' must have the same number of values")
    n = lengths.pop() if lengths else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def record_columns(records: Sequence[Mapping[str, object]]) -> list[str]:
    """Every key some row has, in first-seen order."""
    seen: dict[str, None] = {}
    for row in records:
        for key in row:
            seen.setdefault(key)
    return list(seen)


def from_csv(data: bytes) -> pd.DataFrame:
    """A CSV body with a header row; pandas infers each column, `to_model_frame` coerces it."""
    try:
        return pd.read_csv(io.BytesIO(data), low_memory=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not a valid CSV file with a header row") from exc


def from_parquet(data: bytes) -> pd.DataFrame:
    """A Parquet body (starts and ends with PAR1)."""
    if not (data.startswith(PARQUET_MAGIC) and data.endswith(PARQUET_MAGIC)):
        raise InvalidInput("the body is not a Parquet file")
    try:
        frame: pd.DataFrame = pq.read_table(io.BytesIO(data)).to_pandas()
        return frame
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        raise InvalidInput("the body is not a readable Parquet file") from exc


def check_width(frame: pd.DataFrame, limit: int) -> None:
    if frame.shape[1] > limit:
        raise InvalidInput("too many columns", {"limit": limit, "columns": int(frame.shape[1])})
