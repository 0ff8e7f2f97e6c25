"""Dataset processing: profile, normalize, flag anomalies. Pure pandas, pyarrow and sklearn.

Every number that leaves here is a plain float or None, never NaN: results go into JSON
columns and API responses. Normalize and anomalies stream their input and output in chunks
(see `stream.py`); only what must be seen whole is loaded whole (the columns a forest is
fitted on; one column at a time for a profile).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.ensemble import IsolationForest

from xgenerator.datasets.chunks import OnChunk, ParquetSink, Written, chunks

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# A correlation matrix grows with the square of the columns; past this it is left out.
MAX_CORRELATION_COLUMNS = 100
ANOMALY_COLUMNS = ("is_anomaly", "anomaly_score")

Method = Literal["zscore", "minmax"]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def number(value: Any) -> float | None:
    """A JSON-safe float: None for NaN, infinity or a missing value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


# --- profile ---------------------------------------------------------------------------------


def column_kind(series: pd.Series[Any]) -> str:
    """The same vocabulary as the dataset schema: numeric, boolean, datetime, categorical."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "categorical"


def profile_column(name: str, series: pd.Series[Any], top_k: int) -> dict[str, Any]:
    """Count, nulls, distinct; min/max/mean/std/quantiles for numbers; top values otherwise."""
    kind = column_kind(series)
    present = series.dropna()
    out: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": str(series.dtype),
        "count": len(present),
        "nulls": len(series) - len(present),
        "distinct": int(present.nunique()),
    }
    if kind == "numeric":
        values = present.astype("float64")
        out |= {
            "min": number(values.min()) if len(values) else None,
            "max": number(values.max()) if len(values) else None,
            "mean": number(values.mean()) if len(values) else None,
            "std": number(values.std()) if len(values) > 1 else None,
            "quantiles": {
                f"{q:g}": number(v) if len(values) else None
                for q, v in zip(QUANTILES, values.quantile(list(QUANTILES)), strict=True)
            },
        }
    elif kind == "datetime":
        out |= {
            "min": present.min().isoformat() if len(present) else None,
            "max": present.max().isoformat() if len(present) else None,
        }
    else:
        counts = present.value_counts()
        ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        out["top_values"] = [
            {"value": _json_scalar(value), "count": int(count)} for value, count in ranked[:top_k]
        ]
    return out


def profile(
    read: Callable[[list[str]], pd.DataFrame],
    columns: list[str],
    top_k: int,
    on_step: OnChunk,
) -> dict[str, Any]:
    """Profile `columns`, reading one at a time through `read` (then the numeric ones
    together for their correlations), so memory holds one column, not the dataset."""
    steps = len(columns) + 1
    profiled = []
    for i, name in enumerate(columns):
        profiled.append(profile_column(name, read([name])[name], top_k))
        on_step(i + 1, steps)
    numeric = [c["name"] for c in profiled if c["kind"] == "numeric"]
    result: dict[str, Any] = {
        "rows": profiled[0]["count"] + profiled[0]["nulls"] if profiled else 0,
        "columns": profiled,
        "correlations": None,
        "notes": [],
    }
    if len(numeric) > MAX_CORRELATION_COLUMNS:
        result["notes"].append(
            f"correlations left out: more than {MAX_CORRELATION_COLUMNS} numeric columns"
        )
    elif len(numeric) >= 2:
        result["correlations"] = correlations(read(numeric))
    on_step(steps, steps)
    return result


def correlations(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Pearson correlation between numeric columns (pairwise complete rows, as pandas does)."""
    matrix = frame.astype("float64").corr(method="pearson")
    return {str(a): {str(b): number(matrix.at[a, b]) for b in matrix.columns} for a in matrix.index}


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else str(value)


# --- normalize -------------------------------------------------------------------------------


@dataclass
class _Moments:
    """Running count, mean, sum of squared deviations, min and max (Chan et al.'s merge),
    so that a mean and std computed chunk by chunk equal those of the whole column."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: FloatArray) -> None:
        values = values[~np.isnan(values)]
        if len(values) == 0:
            return
        n_b, mean_b = len(values), float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * self.n * n_b / total
        self.n = total
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def params(self, method: Method) -> dict[str, float | None]:
        if method == "minmax":
            return {"min": number(self.low), "max": number(self.high)}
        std = math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
        return {"mean": number(self.mean) if self.n else None, "std": std}


def fit_scaler(
    frames: Iterable[pd.DataFrame], columns: list[str], method: Method
) -> dict[str, dict[str, float | None]]:
    """Per column: {mean, std} (std with ddof=1, as pandas) or {min, max}."""
    moments = {c: _Moments() for c in columns}
    for frame in frames:
        for c in columns:
            moments[c].add(_floats(frame[c]))
    return {c: moments[c].params(method) for c in columns}


def scale(values: FloatArray, params: dict[str, float | None], method: Method) -> FloatArray:
    """z = (x - mean) / std, or (x - min) / (max - min). A constant column (std or range 0)
    becomes 0 rather than a division by zero; an all-null column stays null."""
    if method == "minmax":
        low, high = params["min"], params["max"]
        if low is None or high is None:
            return np.full_like(values, np.nan)
        span = high - low
        return (values - low) / span if span > 0 else np.where(np.isnan(values), np.nan, 0.0)
    mean, std = params["mean"], params["std"]
    if mean is None:
        return np.full_like(values, np.nan)
    return (values - mean) / std if std else np.where(np.isnan(values), np.nan, 0.0)


def normalize_parquet(
    source: pq.ParquetFile,
    out: IO[bytes],
    columns: list[str],
    method: Method,
    chunk_rows: int,
    on_chunk: OnChunk,
) -> tuple[dict[str, dict[str, float | None]], Written]:
    """Two passes over `source`: fit the parameters, then write every row with the chosen
    columns scaled (as float64). Progress counts both passes."""
    total = 2 * source.metadata.num_rows
    done = 0

    def fitting() -> Iterable[pd.DataFrame]:
        nonlocal done
        for batch in chunks(source, chunk_rows, columns):
            yield batch.to_pandas()
            done += batch.num_rows
            on_chunk(done, total)

    params = fit_scaler(fitting(), columns, method)
    schema = _replace_types(source.schema_arrow, dict.fromkeys(columns, pa.float64()))
    sink = ParquetSink(out, schema)
    try:
        for batch in chunks(source, chunk_rows):
            table = pa.Table.from_batches([batch])
            for name in columns:
                scaled = scale(_floats(table.column(name).to_pandas()), params[name], method)
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, pa.array(scaled, from_pandas=True))
            sink.write(table)
            done += batch.num_rows
            on_chunk(done, total)
    except BaseException:
        sink.abort()
        raise
    return params, sink.close()


def _floats(series: pd.Series[Any]) -> FloatArray:
    values: FloatArray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _replace_types(schema: pa.Schema, types: dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in schema])


# --- anomalies -------------------------------------------------------------------------------


@dataclass
class AnomalyModel:
    """An isolation forest and the medians that fill missing values before it sees them."""

    forest: IsolationForest
    columns: list[str]
    medians: list[float]

    def matrix(self, frame: pd.DataFrame) -> FloatArray:
        x = np.column_stack([_floats(frame[c]) for c in self.columns])
        missing = np.isnan(x)
        if missing.any():
            x = np.where(missing, np.asarray(self.medians)[np.newaxis, :], x)
        return x

    @property
    def threshold(self) -> float:
        """Rows scoring above this are anomalies (`anomaly_score` = -score_samples)."""
        return -float(self.forest.offset_)


def fit_anomalies(
    frame: pd.DataFrame,
    columns: list[str],
    contamination: float | Literal["auto"],
    n_estimators: int,
    seed: int,
) -> AnomalyModel:
    medians = []
    for c in columns:
        values = _floats(frame[c])
        medians.append(float(np.nanmedian(values)) if (~np.isnan(values)).any() else 0.0)
    model = AnomalyModel(
        IsolationForest(
            n_estimators=n_estimators, contamination=contamination, random_state=seed, n_jobs=1
        ),
        columns,
        medians,
    )
    model.forest.fit(model.matrix(frame))
    return model


@dataclass
class _TopRows:
    """The k highest-scoring rows seen so far, across chunks."""

    k: int = 10
    heap: list[tuple[float, int]] = field(default_factory=list)

    def add(self, scores: FloatArray, offset: int) -> None:
        for i in np.argsort(-scores)[: self.k]:
            item = (float(scores[i]), offset + int(i))
            if len(self.heap) < self.k:
                heapq.heappush(self.heap, item)
            else:
                heapq.heappushpop(self.heap, item)

    def rows(self) -> list[dict[str, float | int]]:
        return [
            {"row": row, "anomaly_score": score}
            for score, row in sorted(self.heap, key=lambda item: (-item[0], item[1]))
        ]


def anomalies_parquet(
    source: pq.ParquetFile,
    out: IO[bytes],
    model: AnomalyModel,
    chunk_rows: int,
    on_chunk: OnChunk,
) -> tuple[dict[str, Any], Written]:
    """Every row of `source` plus `is_anomaly` and `anomaly_score`, and a summary."""
    total = source.metadata.num_rows
    schema = source.schema_arrow.append(pa.field("is_anomaly", pa.bool_())).append(
        pa.field("anomaly_score", pa.float64())
    )
    sink = ParquetSink(out, schema)
    flagged, done = 0, 0
    top = _TopRows()
    try:
        for batch in chunks(source, chunk_rows):
            x = model.matrix(batch.select(model.columns).to_pandas())
            scores = -model.forest.score_samples(x)
            is_anomaly = scores > model.threshold
            table = (
                pa.Table.from_batches([batch])
                .append_column("is_anomaly", pa.array(is_anomaly))
                .append_column("anomaly_score", pa.array(scores, type=pa.float64()))
            )
            sink.write(table)
            flagged += int(is_anomaly.sum())
            top.add(scores, done)
            done += batch.num_rows
            on_chunk(done, total)
    except BaseException:
        sink.abort()
        raise
    summary = {
        "rows": done,
        "anomalies": flagged,
        "anomaly_rate": number(flagged / done) if done else None,
        "threshold": number(model.threshold),
        "columns": model.columns,
        "imputed_with_median": dict(zip(model.columns, model.medians, strict=True)),
        "top_anomalies": top.rows(),
    }
    return summary, sink.close()
