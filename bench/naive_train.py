"""The "naive" baseline: CSV through pandas, a scikit-learn one-hot pipeline, XGBClassifier.

The way services of this kind are often written. Run as its own process
(`python -m bench.naive_train CSV ROUNDS`); prints JSON like `bench.bare_train`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder
from xgboost import XGBClassifier

from bench.data import TARGET
from bench.procfs import peak_rss_kib


def train(path: Path, rounds: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the work."""
    started, cpu = time.perf_counter(), time.process_time()
    frame = pd.read_csv(path)
    y = LabelEncoder().fit_transform(frame.pop(TARGET))
    categorical = list(frame.select_dtypes(exclude="number").columns)
    x_train, x_val, y_train, y_val = train_test_split(
        frame, y, test_size=0.2, random_state=42, stratify=y
    )
    encode = ColumnTransformer(
        [("onehot", OneHotEncoder(handle_unknown="ignore"), categorical)], remainder="passthrough"
    )
    model = XGBClassifier(
        n_estimators=rounds,
        max_depth=6,
        tree_method="hist",
        n_jobs=2,
        eval_metric="logloss",
        random_state=42,
    )
    pipeline = Pipeline([("encode", encode), ("model", model)])
    pipeline.fit(x_train, y_train)
    pipeline.predict_proba(x_val)
    return time.perf_counter() - started, time.process_time() - cpu


if __name__ == "__main__":
    elapsed, cpu = train(Path(sys.argv[1]), int(sys.argv[2]))
    print(
        json.dumps(
            {"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_kib": peak_rss_kib(os.getpid())}
        )
    )
