"""External-memory training vs in-memory training: peak RSS, time per round and AUC on the
same Parquet data. `python -m bench.external_memory [--rows 2000000] [--columns 20]
[--memory-rows N]`.

Each mode runs in a fresh process (its VmHWM is its own). In memory: the whole file read
into one frame and `ml.train.train`. External: `ml.external.train_external` over the file's
batches of 50,000 rows read as the job reads them (`datasets.chunks.reader` and `frames`),
XGBoost's pages cached on disk. Both models are scored on the same held-out file.

`--memory-rows` trains the in-memory model on the first N rows only (when the whole frame
would not fit, or would take too long): its figures are then for N rows, and say so.
"frame" is the in-memory pandas frame of all the rows, measured on the first row group
(`memory_usage(deep=True)`) and scaled; "baseline" is the RSS once the modules are imported,
before any data is read.
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
from xgenerator.datasets.chunks import frames, reader
from xgenerator.ml.external import train_external
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec, train
mode, source, test, cache, rounds, columns, memory_rows = sys.argv[1:8]
baseline = peak_rss_kib(os.getpid())
names = [f"x{i}" for i in range(int(columns))]
spec = TrainSpec(task_type="classification", target="label", features=names,
                 params={"max_depth": 6, "eta": 0.3}, num_boost_round=int(rounds),
                 eval_train_every=0)

class Hooks:
    checkpoint_every = 0
    def __init__(self): self.times = []
    def on_round(self, round, total, metrics): self.times.append(time.perf_counter())
    def checkpoint(self, booster, round): pass
    def threads(self): return None

hooks = Hooks()
start = time.perf_counter()
if mode == "memory":
    if int(memory_rows):  # the first rows only, never the whole file
        with pq.ParquetFile(source, pre_buffer=False) as parquet:
            frame = next(parquet.iter_batches(batch_size=int(memory_rows))).to_pandas()
    else:
        frame = pq.read_table(source).to_pandas()
    rows = len(frame)
    result = train(frame, spec, hooks)
    del frame
else:
    def batches():
        with reader(source) as parquet:
            yield from frames(parquet, 50_000)
    trained = train_external(batches, spec, hooks, cache_prefix=cache + "/pages")
    result = trained.result
    rows = result.train_rows + result.validation_rows
elapsed = time.perf_counter() - start
peak = peak_rss_kib(os.getpid())
held = pq.read_table(test).to_pandas()
auc = roc_auc_score(held["label"] == "yes",
                    result.booster.inplace_predict(to_model_frame(held, result.features)))
t = hooks.times
print(json.dumps({"mode": mode, "rows": rows, "seconds": round(elapsed, 1),
                  "s_per_round": round((t[-1] - t[0]) / (len(t) - 1), 2),
                  "before_rounds_s": round(t[0] - start, 1), "auc": round(float(auc), 5),
                  "baseline_mib": round(baseline / 1024), "peak_rss_mib": round(peak / 1024)}))
"""


def make(path: Path, rows: int, columns: int, seed: int) -> None:
    """Rows written 500,000 at a time (row groups of 100,000), never all in memory. Arrow
    arrays straight from NumPy, and no dictionary tried on the float columns: a pandas
    frame and dictionary attempts made writing the slow part of a run."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(columns)]
    schema = pa.schema([(name, pa.float64()) for name in names] + [("label", pa.string())])
    with pq.ParquetWriter(path, schema, use_dictionary=["label"]) as writer:
        for start in range(0, rows, 500_000):
            n = min(500_000, rows - start)
            x = rng.normal(size=(n, columns))
            score = x[:, :5].sum(axis=1) + np.sin(x[:, 5] * 2) + rng.normal(scale=1.0, size=n)
            x = np.asfortranarray(x)  # contiguous columns
            arrays = [pa.array(x[:, i]) for i in range(columns)]
            arrays.append(pa.array(np.where(score > 0, "yes", "no"), type=pa.string()))
            del x
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), 100_000)


def frame_mib(path: Path, rows: int) -> float:
    """The pandas frame of all the rows, scaled from the first row group's."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        first = parquet.read_row_group(0).to_pandas()
    return float(first.memory_usage(deep=True).sum()) / len(first) * rows / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.external_memory", description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--memory-rows", type=int, default=0, help="in memory: the first N")
    parser.add_argument("--modes", default="external,memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source, test = Path(tmp) / "train.parquet", Path(tmp) / "test.parquet"
        make(source, args.rows, args.columns, 0)
        make(test, 100_000, args.columns, 1)
        size = {"rows": args.rows, "columns": args.columns}
        print(json.dumps(size | {"frame_mib": round(frame_mib(source, args.rows))}), flush=True)
        for mode in args.modes.split(","):
            cache = Path(tmp) / f"cache-{mode}"
            cache.mkdir()
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    mode,
                    str(source),
                    str(test),
                    str(cache),
                    str(args.rounds),
                    str(args.columns),
                    str(args.memory_rows if mode == "memory" else 0),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
