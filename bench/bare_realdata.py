"""The bare script a user would write for a CSV: the baseline of `bench.realdata`.

`python -m bench.bare_realdata CSV TARGET TASK ROUNDS` (TASK: binary, multiclass, regression).
pandas reads the file, strings become categories, an 80/20 split (stratified for classes, seed
42: the same rows as the service's split), `hist`, depth 6, native categoricals, `xgb.train`
without evaluation sets, then a prediction on the validation rows. The clock starts after the
imports (a worker has them loaded); prints JSON with the seconds and the validation metric.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split


def main(path: str, target: str, task: str, rounds: int) -> dict[str, float]:
    started = time.perf_counter()
    frame = pd.read_csv(path).dropna(subset=[target])
    y_raw = frame.pop(target)
    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            frame[name] = frame[name].astype("category")
    params: dict[str, object] = {"tree_method": "hist", "max_depth": 6, "seed": 42}
    if task == "regression":
        y = y_raw.to_numpy(dtype=np.float64)
        params |= {"objective": "reg:squarederror"}
    else:
        classes, y = np.unique(y_raw.astype(str), return_inverse=True)
        params |= (
            {"objective": "binary:logistic"}
            if task == "binary"
            else {"objective": "multi:softprob", "num_class": len(classes)}
        )
    x_train, x_val, y_train, y_val = train_test_split(
        frame, y, test_size=0.2, random_state=42, stratify=None if task == "regression" else y
    )
    dtrain = xgb.QuantileDMatrix(x_train, label=y_train, enable_categorical=True)
    booster = xgb.train(params, dtrain, num_boost_round=rounds)
    predicted = booster.inplace_predict(x_val)
    elapsed = time.perf_counter() - started
    if task == "regression":
        quality = {"rmse": float(np.sqrt(np.mean((predicted - y_val) ** 2)))}
    elif task == "binary":
        quality = {"roc_auc": float(roc_auc_score(y_val, predicted))}
    else:
        quality = {"accuracy": float(accuracy_score(y_val, predicted.argmax(axis=1)))}
    return {"seconds": elapsed, "rows": float(len(frame)), **quality}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
