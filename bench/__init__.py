"""Ratio benchmarks of XGenerator against bare XGBoost, Celery and FastAPI baselines."""

import os

# The machine's Redis, on a database number of the benchmarks' own (flushed before and after).
REDIS_URL = os.environ.get("XGEN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

# Set before anything loads OpenMP (XGBoost), here and in every process the benchmarks start:
# on a machine whose cores are all busy, OpenMP threads spinning at barriers made a 2-thread
# XGBoost 5-7x slower and erratic (a 1-row inplace_predict took 24 ms). Sleeping threads keep
# the service and its baselines comparable; see docs/benchmarks.md.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
