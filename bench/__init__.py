"""Ratio benchmarks of XGenerator against bare XGBoost, Celery and FastAPI baselines."""

import os

# The machine's Redis, on a database number of this run's own (9-15; the tests use 1-8),
# flushed before and after, and set in the environment so that the run's child processes use
# it too: two runs on one machine sharing one database consumed each other's messages, and a
# run waited out a job another run's worker had taken.
REDIS_URL = os.environ.setdefault(
    "XGEN_BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{9 + os.getpid() % 7}"
)

# OpenMP keeps its default waiting policy in every process the benchmarks start, as it does
# in a deployment: workers no longer set OMP_WAIT_POLICY=PASSIVE (a thread budget shares the
# cores instead, see docs/benchmarks.md), and the bare baselines are what a user would run.
