"""6. Memory: peak RSS of the API process and of a worker during the big training, vs. the bare
script's. VmHWM from /proc covers each process's whole life, so every peak is caught without
sampling; the worker figure is its pool child that trained (the largest of them)."""

from __future__ import annotations

from bench import training
from bench.common import Bench
from bench.procfs import child_pids, peak_rss_kib
from bench.report import Row, Target, megabytes

NAME = "memory"


def expected(quick: bool) -> list[str]:
    return ["worker peak RSS vs bare script", "API peak RSS vs bare script"]


def run(bench: Bench) -> list[Row]:
    measured = bench.shared.get(training.NAME)
    if measured is None:  # `--only memory`: one training of each kind is enough
        measured = training.measure(bench, repeats=1, naive_repeats=0)
    stack = measured.stack
    children = [pid for worker in stack.workers for pid in child_pids(worker.pid)]
    worker = max(peak_rss_kib(pid) for pid in children)
    api = peak_rss_kib(stack.api.pid)
    bare = max(measured.bare_rss_kib)
    size = f"{bench.config.train_rows:,}-row training"
    return [
        Row(
            NAME,
            "worker peak RSS vs bare script",
            megabytes(worker),
            megabytes(bare),
            worker / bare,
            Target("<=", 1.25, "ours"),
            f"{size}; the pool child that trained",
        ),
        Row(
            NAME,
            "API peak RSS vs bare script",
            megabytes(api),
            megabytes(bare),
            api / bare,
            None,
            f"{size}; the API never loads the data",
        ),
    ]
