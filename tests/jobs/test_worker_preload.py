"""The worker's main process imports every job kind before its pool forks, so no pool process
spends its first job importing them (bench/: a fresh pool process's first job took seconds)."""

from __future__ import annotations

import os
import subprocess
import sys

KIND_MODULES = ("noop", "train", "predict_batch", "process", "report", "cleanup")


def test_importing_the_worker_loads_every_job_kind() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XGEN_")}
    env["XGEN_BROKER_URL"] = "redis://127.0.0.1:1/0"  # never contacted by an import
    loaded = f"m for m in {KIND_MODULES!r} if 'xgenerator.jobs.kinds.' + m in sys.modules"
    probe = f"import sys, xgenerator.tasks.worker\nprint(','.join({loaded}))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().split(",") == list(KIND_MODULES)
