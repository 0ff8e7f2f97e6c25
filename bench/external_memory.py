"""External-memory training vs in-memory training: peak RSS, time per round and AUC on the
same Parquet data. `python -m bench.external_memory [--rows 2000000] [--columns 20]`.

Each mode runs in a fresh process (its VmHWM is its own). In memory: the whole file read
into one frame and `ml.train.train`. External: `ml.external.train_external` over the file's
batches of 50,000 rows (the job's `job_chunk_rows`), XGBoost's pages cached on disk. Both
models are scored on the same held-out file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, os, sys, time
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score
from bench.procfs import peak_rss_kib
from xgenerator.ml.external import train_external
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec, train
mode, source, test, cache, rounds, columns = sys.argv[1:7]
names = [f"x{i}" for i in range(int(columns))]
spec = TrainSpec(task_type="classification", target="label", features=names,
                 params={"max_depth": 6, "eta": 0.3}, num_boost_round=int(rounds),
                 eval_train_every=0)
start = time.perf_counter()
if mode == "memory":
    frame = pq.read_table(source).to_pandas()
    result = train(frame, spec)
    del frame
else:
    def batches():
        with pq.ParquetFile(source) as parquet:
            for batch in parquet.iter_batches(batch_size=50_000):
                yield batch.to_pandas()
    result = train_external(batches, spec, cache_prefix=cache).result
elapsed = time.perf_counter() - start
held = pq.read_table(test).to_pandas()
auc = roc_auc_score(held["label"] == "yes",
                    result.booster.inplace_predict(to_model_frame(held, result.features)))
print(json.dumps({"mode": mode, "seconds": round(elapsed, 2),
                  "s_per_round": round(elapsed / int(rounds), 3), "auc": round(float(auc), 5),
                  "peak_rss_mib": round(peak_rss_kib(os.getpid()) / 1024, 1)}))
"""


def make(path: Path, rows: int, columns: int, seed: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    with_parts = []
    for start in range(0, rows, 500_000):
        n = min(500_000, rows - start)
        x = rng.normal(size=(n, columns)).astype("float64")
        score = x[:, :5].sum(axis=1) + np.sin(x[:, 5] * 2) + rng.normal(scale=1.0, size=n)
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(columns)])
        frame["label"] = np.where(score > 0, "yes", "no")
        with_parts.append(frame)
    pd.concat(with_parts, ignore_index=True).to_parquet(path, index=False, row_group_size=100_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source, test = Path(tmp) / "train.parquet", Path(tmp) / "test.parquet"
        make(source, args.rows, args.columns, 0)
        make(test, 100_000, args.columns, 1)
        frame_mib = args.rows * (args.columns + 1) * 8 / 2**20
        print(json.dumps({"rows": args.rows, "columns": args.columns, "frame_mib": frame_mib}))
        for mode in ("external", "memory"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    mode,
                    str(source),
                    str(test),
                    str(Path(tmp) / f"cache-{mode}"),
                    str(args.rounds),
                    str(args.columns),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
