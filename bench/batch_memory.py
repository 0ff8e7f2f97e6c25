"""Batch prediction memory: peak RSS vs rows, streamed (the `predict` job's code) vs loading
the whole dataset first. `python -m bench.batch_memory [--rows 100000,1000000]`.

Each measurement runs in a fresh process, so its VmHWM (peak resident set) is that run's
alone; the model and the input Parquet file are made once beforehand. The streamed peak
should stay flat as rows grow (one chunk of `job_chunk_rows` at a time); the whole-frame
peak grows with the data.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHUNK_ROWS = 50_000  # the default of settings.job_chunk_rows

CHILD = """
import os, sys, time
from pathlib import Path
import pandas as pd
import pyarrow.parquet as pq
from bench.procfs import peak_rss_kib
from xgenerator.ml import bundle
from xgenerator.ml.batch import predict_parquet
from xgenerator.ml.predict import predict_scores
mode, model, source, out, chunk = sys.argv[1:6]
packed = bundle.loads(Path(model).read_bytes())
start = time.perf_counter()
if mode == "streamed":
    with pq.ParquetFile(source, pre_buffer=False) as f, open(out, "wb") as handle:  # as the job
        predict_parquet(packed, f, handle, int(chunk), lambda done, total: None)
else:
    frame = pd.read_parquet(source)
    scores = predict_scores(packed, frame)
    frame["prediction"] = scores.argmax(axis=1)
    frame.to_parquet(out)
print(peak_rss_kib(os.getpid()), time.perf_counter() - start)
"""


def make_inputs(folder: Path, rows: list[int]) -> tuple[Path, dict[int, Path]]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xgenerator.ml import bundle
    from xgenerator.ml.bundle import ModelBundle
    from xgenerator.ml.train import TrainSpec, train

    def frame(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 8))
        data = {f"x{i}": x[:, i] for i in range(8)}
        data["color"] = rng.choice(["red", "green", "blue"], size=n)
        data["label"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
        return pd.DataFrame(data)

    features = [*(f"x{i}" for i in range(8)), "color"]
    result = train(
        frame(5_000, 0),
        TrainSpec("classification", "label", features, {"nthread": 1, "max_depth": 4}, 30),
    )
    model = folder / "model.ubj"
    model.write_bytes(
        bundle.dumps(
            ModelBundle(result.booster, "classification", "label", result.features, result.labels)
        )
    )
    sources = {}
    for n in rows:
        sources[n] = folder / f"rows-{n}.parquet"
        table = pa.Table.from_pandas(frame(n, 1), preserve_index=False)
        pq.write_table(table, sources[n], row_group_size=100_000)
    return model, sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_memory", description=__doc__)
    parser.add_argument(
        "--rows", default="100000,400000,1600000", help="comma-separated dataset sizes"
    )
    args = parser.parse_args(argv)
    rows = [int(r) for r in args.rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="xgen-batch-") as tmp:
        folder = Path(tmp)
        model, sources = make_inputs(folder, rows)
        print(
            "| rows | file MiB | streamed peak RSS | whole-frame peak RSS | streamed s | "
            "whole-frame s |"
        )
        print("|---|---|---|---|---|---|")
        for n in rows:
            measured = {}
            for mode in ("streamed", "whole"):
                out = folder / f"out-{mode}-{n}.parquet"
                done = subprocess.run(  # noqa: S603 - our own interpreter and script
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        mode,
                        str(model),
                        str(sources[n]),
                        str(out),
                        str(CHUNK_ROWS),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                peak, seconds = done.stdout.split()
                measured[mode] = (int(peak) / 1024, float(seconds))
            size = sources[n].stat().st_size / 2**20
            print(
                f"| {n:,} | {size:.0f} | {measured['streamed'][0]:.0f} MiB | "
                f"{measured['whole'][0]:.0f} MiB | {measured['streamed'][1]:.1f} | "
                f"{measured['whole'][1]:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
