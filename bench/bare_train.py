"""The bare baseline for training: read the stored Parquet, call `xgboost.train`, nothing else.

Run as its own process (`python -m bench.bare_train PARQUET ROUNDS`) so that its peak RSS is its
own. The clock starts after the imports, as a worker has them loaded already, and covers what
the service does to the data: read, categoricals, an 80/20 stratified split, the same
`hist` matrices and evaluation sets, and a prediction on the validation rows. Prints JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.model_selection import train_test_split

from bench.data import TARGET
from bench.procfs import peak_rss_kib

PARAMS = {
    "tree_method": "hist",
    "max_depth": 6,
    "nthread": 2,
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "seed": 42,
}


def train(path: Path, rounds: int, params: dict[str, object] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the work; `params` override `PARAMS` (a search's trial)."""
    started, cpu = time.perf_counter(), time.process_time()
    frame = pq.read_table(path, memory_map=True).to_pandas()
    y = (frame.pop(TARGET) == "yes").to_numpy(dtype=np.int32)
    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name].dtype):
            frame[name] = frame[name].astype("category")
    x_train, x_val, y_train, y_val = train_test_split(
        frame, y, test_size=0.2, random_state=42, stratify=y
    )
    dtrain = xgb.QuantileDMatrix(x_train, label=y_train, enable_categorical=True, nthread=2)
    dval = xgb.QuantileDMatrix(x_val, label=y_val, enable_categorical=True, ref=dtrain, nthread=2)
    booster = xgb.train(
        {**PARAMS, **(params or {})},
        dtrain,
        num_boost_round=rounds,
        evals=[(dtrain, "train"), (dval, "validation")],
        verbose_eval=False,
    )
    booster.inplace_predict(x_val)
    return time.perf_counter() - started, time.process_time() - cpu


if __name__ == "__main__":
    elapsed, cpu = train(Path(sys.argv[1]), int(sys.argv[2]))
    print(
        json.dumps(
            {"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_kib": peak_rss_kib(os.getpid())}
        )
    )
