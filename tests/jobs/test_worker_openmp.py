"""`xgenerator worker` leaves OpenMP's waiting policy alone: passive waiting made a lone
training 1.2-3x slower, and concurrent trainings now share the cores through the worker's
thread budget instead (jobs/threads.py, tests/jobs/test_worker_threads.py). An operator may
still choose a policy. libgomp prints the settings it read when asked to."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import wait_for


def _gomp_spincount(extra_env: dict[str, str]) -> str:
    """Start a worker (its broker unreachable: it never gets past connecting) and read the
    spin count libgomp settled on when XGBoost loaded."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith(("XGEN_", "OMP_", "GOMP_")))}
    env |= {"XGEN_BROKER_URL": "redis://127.0.0.1:1/0", "OMP_DISPLAY_ENV": "VERBOSE", **extra_env}
    found: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "xgenerator", "worker", "--concurrency", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        stderr = process.stderr
        assert stderr is not None

        def spincount_printed() -> bool:
            line = stderr.readline()
            if "GOMP_SPINCOUNT" in line:
                found.append(line.split("=", 1)[1].strip().strip("'"))
            return bool(found) or process.poll() is not None

        try:
            wait_for(spincount_printed, timeout=120, interval=0, what="libgomp's settings")
        finally:
            process.kill()
    assert found, "libgomp printed no GOMP_SPINCOUNT"
    return found[0]


def test_worker_keeps_openmps_default_waiting() -> None:
    # libgomp's default without OMP_WAIT_POLICY spins 300,000 times before sleeping; PASSIVE
    # (what workers used to set) is a spin count of 0.
    assert _gomp_spincount({}) == "300000"


def test_an_operator_may_still_choose_passive_waiting() -> None:
    assert _gomp_spincount({"OMP_WAIT_POLICY": "PASSIVE"}) == "0"
