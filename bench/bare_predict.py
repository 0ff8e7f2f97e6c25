"""The bare baseline for batch prediction: the whole frame at once through `inplace_predict`.

`python -m bench.bare_predict PARQUET MODEL CATEGORIES OUT`: read the Parquet file, code its
categoricals with the model's levels, predict, write input rows + prediction + probabilities to
Parquet (as the service's batch job does). Prints JSON with seconds and peak RSS.
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

from bench.procfs import peak_rss_kib


def predict(source: Path, model: Path, categories_path: Path, out: Path) -> float:
    booster = xgb.Booster(model_file=str(model))
    categories: dict[str, list[str]] = json.loads(categories_path.read_text())
    started = time.perf_counter()
    frame = pq.read_table(source, memory_map=True).to_pandas()
    features = {}
    for name in booster.feature_names or []:
        if name in categories:
            features[name] = pd.Categorical(frame[name], categories=categories[name])
        else:
            features[name] = frame[name].to_numpy(dtype=np.float32)
    proba = booster.inplace_predict(pd.DataFrame(features))
    frame["prediction"] = np.where(proba > 0.5, "yes", "no")
    frame["probability_no"] = 1.0 - proba
    frame["probability_yes"] = proba
    frame.to_parquet(out, index=False)
    return time.perf_counter() - started


if __name__ == "__main__":
    elapsed = predict(*(Path(arg) for arg in sys.argv[1:5]))
    print(json.dumps({"seconds": elapsed, "peak_rss_kib": peak_rss_kib(os.getpid())}))
