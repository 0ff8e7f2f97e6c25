"""`python -m bench.mlflow_serve MODEL_FILE MODEL_DIR PORT`: save the booster in MODEL_FILE as
an MLflow model in MODEL_DIR (`mlflow.xgboost.save_model`, with a signature of its float
features, as `log_model` with an input example records it), then become
`mlflow models serve -m MODEL_DIR --env-manager local` on 127.0.0.1:PORT.

A child of the benchmark, so that MLflow's imports (seconds) run alongside the run's other
services starting instead of holding up the benchmark process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb


def main(model_file: str, model_dir: str, port: str) -> None:
    import mlflow.xgboost
    from mlflow.models import infer_signature

    booster = xgb.Booster(model_file=model_file)
    names = booster.feature_names or []
    sample = pd.DataFrame({name: np.zeros(2, dtype=np.float32) for name in names})
    signature = infer_signature(sample, booster.inplace_predict(sample))
    mlflow.xgboost.save_model(booster, model_dir, signature=signature)
    program = str(Path(sys.executable).parent / "mlflow")
    command = ["models", "serve", "-m", model_dir, "--env-manager", "local"]
    os.execv(program, [program, *command, "--host", "127.0.0.1", "--port", port])  # noqa: S606


if __name__ == "__main__":
    main(*sys.argv[1:4])
