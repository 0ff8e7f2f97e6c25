"""One model on 1 vs 2 Dask workers: time per round, same data, same model quality.
`python -m bench.dask_workers [--rows 400000] [--columns 20] [--rounds 30]`.

For each worker count a fresh `dask.distributed` LocalCluster (worker processes, one thread
each) trains `ml.distributed.train_dask` on the same Parquet file (row groups of 50,000
rows, read by the workers themselves), as a distributed job does. Timed: the whole call
(scan, coding, matrices, training) and the boosting rounds alone (from the first round's
report to the last). Both models are scored on the same held-out file.

Not part of `python -m bench --quick`: each run starts its own cluster (seconds), and on a
machine with fewer cores than workers the ratio says nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from distributed import Client, LocalCluster
from xgenerator.datasets.pieces import RowGroup, read_piece
from xgenerator.ml.distributed import Piece, train_dask
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec


def make(path: Path, rows: int, columns: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns))
    score = x[:, :5].sum(axis=1) + np.sin(x[:, 5] * 2) + rng.normal(scale=1.0, size=rows)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(columns)])
    frame["label"] = np.where(score > 0, "yes", "no")
    frame.to_parquet(path, index=False, row_group_size=50_000)


class Clock:
    """Hooks that time the boosting rounds as the caller sees them arrive."""

    checkpoint_every = 0

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.rounds = 0

    def on_round(self, round: int, total: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.rounds = round

    def checkpoint(self, booster: xgb.Booster, round: int) -> None:
        return None

    def threads(self) -> int | None:
        return None


def run(workers: int, source: Path, test: Path, columns: int, rounds: int) -> dict[str, Any]:
    names = [f"x{i}" for i in range(columns)]
    metadata = pq.ParquetFile(source).metadata
    pieces = [
        Piece(RowGroup("file", str(source), i, [*names, "label"]), metadata.row_group(i).num_rows)
        for i in range(metadata.num_row_groups)
    ]
    spec = TrainSpec(
        task_type="classification",
        target="label",
        features=names,
        params={"max_depth": 6, "eta": 0.3},
        num_boost_round=rounds,
    )
    clock = Clock()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        start = time.perf_counter()
        result = train_dask(client, read_piece, pieces, spec, clock).result
        total = time.perf_counter() - start
    held = pd.read_parquet(test)
    auc = roc_auc_score(
        held["label"] == "yes",
        result.booster.inplace_predict(to_model_frame(held, result.features)),
    )
    assert clock.first is not None and clock.last is not None
    per_round = (clock.last - clock.first) / max(clock.rounds - 1, 1)
    return {
        "workers": workers,
        "seconds": round(total, 2),
        "s_per_round": round(per_round, 4),
        "auc": round(float(auc), 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dask_workers", description=__doc__)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source, test = Path(tmp) / "train.parquet", Path(tmp) / "test.parquet"
        make(source, args.rows, args.columns, 0)
        make(test, 50_000, args.columns, 1)
        print(json.dumps({"rows": args.rows, "columns": args.columns, "cpus": os.cpu_count()}))
        results = [run(n, source, test, args.columns, args.rounds) for n in (1, 2)]
    for line in results:
        print(json.dumps(line))
    one, two = results
    print(
        json.dumps(
            {
                "round_speedup_2_vs_1": round(one["s_per_round"] / two["s_per_round"], 2),
                "total_speedup_2_vs_1": round(one["seconds"] / two["seconds"], 2),
                "auc_difference": round(abs(one["auc"] - two["auc"]), 5),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
