"""A live embedded server for client, CLI and dashboard tests: `xgenerator serve` in a child
process (API + private redis-server + worker) on a free port, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.support import classification_frame, require_service
from xgenerator.cli.demo import LocalServer
from xgenerator.client import Client, Job
from xgenerator.embedded import find_redis_server
from xgenerator.errors import ConfigurationError

SERVER_ENV = {
    "XGEN_PROGRESS_INTERVAL_S": "0.1",
    "XGEN_STREAM_POLL_S": "0.1",
    "XGEN_RATE_LIMIT_ENABLED": "false",  # tests train more often than 3 a minute
    "XGEN_MAX_NUM_BOOST_ROUND": "100000",  # room for jobs long enough to be cancelled
    "XGEN_WORKER_CONCURRENCY": "2",
}
# One thread per job: the test machine has two cores, and OpenMP threads fighting over them
# make a small job ten times slower.
FAST = {"max_depth": 3, "nthread": 1}


def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    try:
        find_redis_server(None)
    except ConfigurationError as exc:
        require_service("redis-server", exc)
    server = LocalServer(tmp_path_factory.mktemp("live"), env=SERVER_ENV)
    server.start(timeout=180)
    try:
        yield server
    finally:
        server.stop()


def csv_file(directory: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = directory / name
    frame.to_csv(path, index=False)
    return path


def long_job(client: Client, dataset_id: str) -> Job:
    """A training job that runs until it is cancelled (about a minute of rounds)."""
    return client.train(
        dataset_id,
        "label",
        model_name="long",
        num_boost_round=100_000,
        xgb_params={**FAST, "eta": 0.001},
    )


def running_with_rounds(job: Job) -> bool:
    info = job.refresh()
    return info.status == "running" and (info.progress.round or 0) > 0


def single_class_frame() -> pd.DataFrame:
    return classification_frame(60).assign(label="same")
