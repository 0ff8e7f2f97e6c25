"""`python -m bench [--quick] [--only NAME]`: run the benchmarks, print one markdown table.

Progress goes to stderr, the table to stdout. A benchmark that crashes still gets its rows
(marked error) and makes the exit status 1, which is what the CI smoke test checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import platform
import tempfile
import traceback
from pathlib import Path
from typing import Any

from bench.common import Bench, flush_redis, log
from bench.report import Config, Row, table

# Order matters a little: memory reads what training left, submission stops the workers.
BENCHMARKS = (
    "training",
    "memory",
    "realdata",
    "tune",
    "queue",
    "prediction",
    "submission",
    "listing",
    "history",
    "explain",
    "serving",
    "online",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one size of bench.common.Config (for profiling), e.g. "
        "train_rows=200000 or listing_sizes=1000,10000",
    )
    args = parser.parse_args(argv)
    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    config = override(Config.make(args.quick), args.set)
    log(
        f"{'quick' if args.quick else 'full'} run of {', '.join(selected)} on "
        f"{platform.node()} ({platform.python_version()})"
    )
    flush_redis()
    bench = Bench(config, Path(tempfile.mkdtemp(prefix="xgen-bench-")))
    rows: list[Row] = []
    failed = False
    try:
        bench.prestart(selected)
        for name in selected:
            module = importlib.import_module(f"bench.{name}")
            try:
                rows += module.run(bench)
            except Exception as exc:
                failed = True
                traceback.print_exc()
                message = f"error: {type(exc).__name__}: {exc}".splitlines()[0][:200]
                rows += [
                    Row(name, measure, note=message) for measure in module.expected(config.quick)
                ]
    finally:
        bench.close()
    print(table(rows), flush=True)
    log("done")
    return 1 if failed else 0


def override(config: Config, assignments: list[str]) -> Config:
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        current = getattr(config, name)  # AttributeError names a wrong field
        if isinstance(current, tuple):
            changes[name] = tuple(int(v) for v in value.split(","))
        else:
            changes[name] = type(current)(value)
    return dataclasses.replace(config, **changes)


if __name__ == "__main__":
    raise SystemExit(main())
