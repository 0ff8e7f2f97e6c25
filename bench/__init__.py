"""Ratio benchmarks of XGenerator against bare XGBoost, Celery and FastAPI baselines."""

import os

# The machine's Redis, on a database number of the benchmarks' own (flushed before and after).
REDIS_URL = os.environ.get("XGEN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

# OpenMP keeps its default waiting policy in every process the benchmarks start, as it does
# in a deployment: workers no longer set OMP_WAIT_POLICY=PASSIVE (a thread budget shares the
# cores instead, see docs/benchmarks.md), and the bare baselines are what a user would run.
