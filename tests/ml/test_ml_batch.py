"""Batch prediction in chunks equals online prediction, row for row, for every label style."""

from __future__ import annotations

import io
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xgenerator.ml.batch import output_columns, predict_parquet
from xgenerator.ml.bundle import ModelBundle
from xgenerator.ml.predict import predict, rows_to_frame
from xgenerator.ml.train import TrainSpec, train


def fit(frame: pd.DataFrame, target: str, features: list[str], params: Any) -> ModelBundle:
    task: Any = "regression" if target == "value" else "classification"
    result = train(frame, TrainSpec(task, target, features, params, 6))
    return ModelBundle(result.booster, task, target, result.features, result.labels)


@pytest.mark.parametrize("target", ["yes_no", "digit", "truth", "value"])
def test_chunks_equal_online_predictions(
    frame: pd.DataFrame, features: list[str], fast_params: Any, target: str
) -> None:
    bundle = fit(frame, target, features, fast_params)
    source = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source, row_group_size=50)
    source.seek(0)
    out = io.BytesIO()
    seen: list[int] = []
    written = predict_parquet(
        bundle, pq.ParquetFile(source), out, 23, lambda done, total: seen.append(done)
    )
    result = pq.read_table(io.BytesIO(out.getvalue())).to_pandas()
    assert written.rows == len(frame) == len(result)
    assert seen[-1] == len(frame) and len(seen) > len(frame) // 23
    # the input rows come back unchanged, in order
    pd.testing.assert_frame_equal(result[list(frame.columns)], frame, check_dtype=False)
    records = frame[features].astype(object).where(frame[features].notna(), None)
    online = predict(
        bundle, rows_to_frame(cast(list[dict[str, object]], records.to_dict("records")))
    )
    assert result["prediction"].tolist() == online.predictions
    if online.probabilities is not None:
        for cls in online.probabilities[0]:
            np.testing.assert_allclose(
                result[f"probability_{cls}"], [p[cls] for p in online.probabilities], rtol=1e-7
            )
    assert written.schema["columns"][-1]["name"] == list(result.columns)[-1]


def test_output_names_never_overwrite_input_columns(
    frame: pd.DataFrame, features: list[str], fast_params: Any
) -> None:
    bundle = fit(frame, "yes_no", features, fast_params)
    names = output_columns(["prediction", "probability_no", "_prediction"], bundle)
    assert list(names) == ["__prediction", "_probability_no", "probability_yes"]
