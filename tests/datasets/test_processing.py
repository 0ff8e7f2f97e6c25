"""Dataset processing without the service: numbers checked against pandas on the same data."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xgenerator.datasets import operations
from xgenerator.datasets.ingest import describe


def parquet_file(frame: pd.DataFrame, row_group_size: int | None = None) -> pq.ParquetFile:
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), buffer, row_group_size=row_group_size
    )
    buffer.seek(0)
    return pq.ParquetFile(buffer)


def mixed_frame(rows: int = 300, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(5, 2, rows),
            "b": rng.integers(-50, 50, rows),
            "c": rng.choice(["x", "y", "z", "w"], rows, p=[0.5, 0.3, 0.15, 0.05]),
            "d": rng.random(rows) > 0.3,
        }
    )
    frame.loc[::7, "a"] = np.nan
    frame.loc[::11, "c"] = None
    return frame


def test_profile_matches_pandas() -> None:
    frame = mixed_frame()
    steps: list[tuple[int, int]] = []
    result = operations.profile(
        lambda cols: frame[cols], list(frame.columns), 3, lambda d, t: steps.append((d, t))
    )
    json.dumps(result, allow_nan=False)  # JSON-safe
    by_name = {c["name"]: c for c in result["columns"]}
    a = by_name["a"]
    assert a["kind"] == "numeric"
    assert a["count"] == frame["a"].count() and a["nulls"] == frame["a"].isna().sum()
    assert a["distinct"] == frame["a"].nunique()
    assert a["mean"] == pytest.approx(frame["a"].mean())
    assert a["std"] == pytest.approx(frame["a"].std())
    assert a["min"] == pytest.approx(frame["a"].min()) and a["max"] == frame["a"].max()
    for q in operations.QUANTILES:
        assert a["quantiles"][f"{q:g}"] == pytest.approx(frame["a"].quantile(q))
    c = by_name["c"]
    assert c["kind"] == "categorical" and c["nulls"] == frame["c"].isna().sum()
    expected = frame["c"].value_counts().head(3)
    assert [(t["value"], t["count"]) for t in c["top_values"]] == list(expected.items())
    assert by_name["d"]["kind"] == "boolean"
    assert {t["value"] for t in by_name["d"]["top_values"]} == {True, False}
    corr = frame[["a", "b"]].corr()
    assert set(result["correlations"]) == {"a", "b"}
    assert result["correlations"]["a"]["b"] == pytest.approx(corr.at["a", "b"])
    assert result["rows"] == len(frame)
    assert steps[-1] == (5, 5)


def test_profile_of_empty_and_constant_columns_has_no_nan() -> None:
    frame = pd.DataFrame({"n": [np.nan, np.nan], "k": [1.0, 1.0]})
    result = operations.profile(lambda cols: frame[cols], ["n", "k"], 5, lambda d, t: None)
    json.dumps(result, allow_nan=False)
    n, k = result["columns"]
    assert n["mean"] is None and n["count"] == 0
    assert k["std"] == 0.0
    assert result["correlations"]["n"]["k"] is None


@pytest.mark.parametrize("method", ["zscore", "minmax"])
def test_normalize_streamed_in_small_chunks_equals_pandas(method: operations.Method) -> None:
    frame = mixed_frame(250)
    source = parquet_file(frame, row_group_size=60)
    out = io.BytesIO()
    progress: list[tuple[int, int]] = []
    params, written = operations.normalize_parquet(
        source, out, ["a", "b"], method, 17, lambda d, t: progress.append((d, t))
    )
    result = pq.read_table(io.BytesIO(out.getvalue())).to_pandas()
    for col in ("a", "b"):
        x = frame[col].astype("float64")
        if method == "zscore":
            expected = (x - x.mean()) / x.std()
            assert params[col]["mean"] == pytest.approx(x.mean())
            assert params[col]["std"] == pytest.approx(x.std())
        else:
            expected = (x - x.min()) / (x.max() - x.min())
        np.testing.assert_allclose(result[col], expected, rtol=1e-9, atol=1e-12)
    pd.testing.assert_series_equal(result["c"], frame["c"].astype(result["c"].dtype))
    assert written.rows == len(frame)
    assert written.schema == describe(result)
    assert progress[-1] == (500, 500)


def test_a_constant_column_normalizes_to_zero_and_nulls_stay_null() -> None:
    frame = pd.DataFrame({"k": [2.0, 2.0, np.nan, 2.0]})
    out = io.BytesIO()
    params, _ = operations.normalize_parquet(
        parquet_file(frame), out, ["k"], "zscore", 2, lambda d, t: None
    )
    values = pq.read_table(io.BytesIO(out.getvalue())).column("k").to_pylist()
    assert values == [0.0, 0.0, None, 0.0]
    assert params["k"] == {"mean": 2.0, "std": 0.0}


def test_anomalies_flag_planted_outliers_whatever_the_chunk_size() -> None:
    rng = np.random.default_rng(0)
    normal = pd.DataFrame(
        {"u": rng.normal(size=500), "v": rng.normal(size=500), "name": ["row"] * 500}
    )
    planted = pd.DataFrame(
        {"u": [9.0, -8.0, 10.0, 0.0], "v": [9.0, 8.0, -10.0, 12.0], "name": ["out"] * 4}
    )
    frame = pd.concat([normal.iloc[:200], planted, normal.iloc[200:]], ignore_index=True)
    frame.loc[5, "u"] = np.nan  # imputed with the median, not an error
    model = operations.fit_anomalies(frame[["u", "v"]], ["u", "v"], 0.01, 100, 0)
    outputs = []
    for chunk in (1000, 37):
        out = io.BytesIO()
        summary, written = operations.anomalies_parquet(
            parquet_file(frame), out, model, chunk, lambda d, t: None
        )
        outputs.append(pq.read_table(io.BytesIO(out.getvalue())).to_pandas())
    result = outputs[0]
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    flagged = set(result.index[result["is_anomaly"]])
    assert set(range(200, 204)) <= flagged
    assert len(flagged) <= 8
    assert summary["anomalies"] == len(flagged)
    assert {r["row"] for r in summary["top_anomalies"][:4]} == set(range(200, 204))
    assert (result.loc[list(range(200, 204)), "anomaly_score"] > summary["threshold"]).all()
    assert written.schema["columns"][-2]["kind"] == "boolean"
    json.dumps(summary, allow_nan=False)
