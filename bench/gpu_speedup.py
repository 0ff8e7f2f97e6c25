"""`python bench/gpu_speedup.py`: the same XGBoost training on the CPU and on an NVIDIA GPU.

Self-contained (numpy and xgboost only, no service, no database), so it runs on any GPU host:

    pip install numpy xgboost && python gpu_speedup.py            # 1M x 30, depth 6, 100 rounds
    python gpu_speedup.py --rows 100000 --rounds 20               # a quick look

Both sides train `hist` trees on the same QuantileDMatrix; only `xgb.train` is timed (median
of --repeats), after an untimed warm-up that pays CUDA's start-up. The CPU runs with 2 threads
(the size of our service machines) and with every core this host has. Prints a markdown table
and exits 1 when no GPU could be used, so a missing figure is never mistaken for one.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import xgboost as xgb


def make_data(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Numbers with a non-linear signal, so trees have real splits to find."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, cols)).astype(np.float32)
    score = x[:, 0] * x[:, 1] + np.sin(x[:, 2]) + (x[:, 3] > 0.5) + rng.normal(scale=0.5, size=rows)
    return x, (score > np.median(score)).astype(np.float32)


def train_seconds(
    dtrain: xgb.DMatrix, params: dict[str, object], rounds: int, repeats: int
) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        booster = xgb.train(params, dtrain, num_boost_round=rounds)
        booster.num_boosted_rounds()  # training is synchronous; this only touches the result
        times.append(time.perf_counter() - start)
    return times


def gpu_name() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    done = subprocess.run(
        [smi, "--query-gpu=name", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=30)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    cores = len(os.sched_getaffinity(0))
    x, y = make_data(args.rows, args.cols)
    dtrain = xgb.QuantileDMatrix(x, label=y, max_bin=256)
    base = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": args.depth,
        "eta": 0.1,
        "max_bin": 256,
        "verbosity": 1,
    }
    results: list[tuple[str, float]] = []
    for threads in sorted({min(2, cores), cores}):
        label = f"CPU, {threads} thread{'s' if threads > 1 else ''}"
        print(f"training on {label} ...", file=sys.stderr, flush=True)
        params = base | {"device": "cpu", "nthread": threads}
        train_seconds(dtrain, params, 2, 1)  # warm-up
        results.append(
            (label, statistics.median(train_seconds(dtrain, params, args.rounds, args.repeats)))
        )

    name = gpu_name()
    gpu_error = None
    if not xgb.build_info().get("USE_CUDA"):
        gpu_error = "this XGBoost build has no CUDA support"
    elif name is None:
        gpu_error = "no NVIDIA GPU visible (nvidia-smi missing or failing)"
    else:
        print(f"training on {name} ...", file=sys.stderr, flush=True)
        params = base | {"device": "cuda"}
        try:
            train_seconds(dtrain, params, 2, 1)  # warm-up: CUDA context, data upload
            results.append(
                (
                    f"GPU, {name}",
                    statistics.median(train_seconds(dtrain, params, args.rounds, args.repeats)),
                )
            )
        except xgb.core.XGBoostError as exc:
            gpu_error = f"training with device=cuda failed: {str(exc).splitlines()[0]}"

    print(
        f"XGBoost {xgb.__version__} on {platform.node()} ({cores} cores): {args.rows:,} rows "
        f"x {args.cols} features, depth {args.depth}, {args.rounds} rounds, hist, "
        f"median of {args.repeats}.\n"
    )
    cpu_labels = [label for label, _ in results if label.startswith("CPU")]
    print("| device | train time | " + " | ".join(f"speed-up vs {c}" for c in cpu_labels) + " |")
    print("|---|---|" + "---|" * len(cpu_labels))
    cpu_times = dict(results)
    for label, seconds in results:
        ratios = " | ".join(f"{cpu_times[c] / seconds:.1f}×" for c in cpu_labels)
        print(f"| {label} | {seconds:.2f} s | {ratios} |")
    if gpu_error:
        print(f"\nGPU not measured: {gpu_error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
