"""Helpers for tests: service requirements, deadlines, real worker processes, test data."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from xgenerator.artifacts import ArtifactStore
from xgenerator.client import Client, NotFoundError
from xgenerator.settings import Settings

T = TypeVar("T")


def require_service(name: str, exc: Exception) -> None:
    """Skip when a service is down, unless XGEN_REQUIRE_SERVICES=1 (CI), where it fails."""
    if os.environ.get("XGEN_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (XGEN_REQUIRE_SERVICES=1) but unreachable: {exc}")
    pytest.skip(f"{name} unreachable: {exc}")


def wait_for(
    condition: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll until `condition()` returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def settings_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"XGEN_{name.upper()}"] = str(value)
    env["XGEN_DATABASE_URL"] = settings.resolved_database_url
    env["XGEN_STORAGE_URL"] = settings.resolved_storage_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """A real `xgenerator worker` subprocess, logging to a file next to the data dir."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        concurrency: int | None = 2,
        queues: str = "train,predict,process,maintenance",
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.concurrency = concurrency
        self.queues = queues
        self.extra_env = extra_env or {}
        self.extra_args = extra_args or []
        self.log = Path(settings.data_dir) / f"worker-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting, so several workers can boot side by side."""
        env = settings_env(self.settings) | self.extra_env
        # concurrency None: the worker's default (XGEN_WORKER_CONCURRENCY)
        flag = [] if self.concurrency is None else ["--concurrency", str(self.concurrency)]
        command = [
            sys.executable,
            "-m",
            "xgenerator",
            "worker",
            *flag,
            "--queues",
            self.queues,
            "--hostname",
            f"{self.name}@%h",
            "--loglevel",
            "INFO",
            *self.extra_args,
        ]
        with self.log.open("ab") as handle:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_for(self._ready, timeout, 0.1, f"worker {self.name} to be ready")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited:\n{self.output()}")
        return " ready." in self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(pid) for pid in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children) at once."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self, timeout: float = 60.0) -> None:
        """SIGTERM to the main process only, as `docker stop` or `kill PID` does."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class S3Server:
    """moto's standalone S3 server on a free loopback port: a real HTTP S3 endpoint, so the
    code under test goes through s3fs, aiobotocore and the network as it would to MinIO."""

    access_key = "xgen-test"
    secret_key = "xgen-test-secret"
    region = "us-east-1"

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._listening, timeout, 0.05, "the S3 server (moto) to listen")

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"moto server exited:\n{self.log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def new_bucket(self) -> dict[str, str]:
        """A fresh empty bucket; returns the settings that point the store at it."""
        bucket = f"xgen-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return {
            "storage_url": f"s3://{bucket}/artifacts",
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_region": self.region,
        }

    def keys(self, storage_url: str) -> list[str]:
        """Every object under the store's prefix, as store keys."""
        bucket, prefix = storage_url.removeprefix("s3://").split("/", 1)
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=f"{prefix}/")
        )
        return sorted(
            item["Key"].removeprefix(f"{prefix}/")
            for page in pages
            for item in page.get("Contents", [])
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


@contextmanager
def unreachable_s3_store() -> Iterator[ArtifactStore]:
    """An S3 store whose endpoint refuses connections (a loopback port bound, not listening,
    held meanwhile), with botocore told not to retry: the tests are about what follows."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        yield ArtifactStore(
            "s3://bucket/prefix",
            {
                "key": "k",
                "secret": "s",
                "skip_instance_cache": True,
                "client_kwargs": {
                    "endpoint_url": f"http://127.0.0.1:{port}",
                    "region_name": "us-east-1",
                },
                "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
            },
        )


# --- test data ---------------------------------------------------------------------------------


def create_user(client: TestClient, username: str = "alice") -> dict[str, str]:
    response = client.post(
        "/users", json={"username": username, "email": f"{username}@example.com"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return {"X-API-Key": body["api_key"], "user_id": body["user_id"]}


def auth(user: dict[str, str]) -> dict[str, str]:
    return {"X-API-Key": user["X-API-Key"]}


def upload(
    client: TestClient,
    user: dict[str, str],
    data: bytes | pd.DataFrame,
    name: str = "data",
    filename: str = "data.csv",
) -> Any:
    if isinstance(data, pd.DataFrame):
        buffer = io.BytesIO()
        data.to_csv(buffer, index=False)
        data = buffer.getvalue()
    return client.post(
        "/datasets",
        headers=auth(user),
        data={"dataset_name": name},
        files={"file": (filename, data, "text/csv")},
    )


def classification_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numbers, a string category, missing values and string labels."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(0, 10, size=rows)
    color = rng.choice(["red", "green", "blue"], size=rows)
    score = x1 + (x2 > 5) + (color == "red") * 1.5 + rng.normal(scale=0.3, size=rows)
    frame = pd.DataFrame(
        {"x1": x1, "x2": x2, "color": color, "label": np.where(score > 1.0, "yes", "no")}
    )
    frame.loc[::17, "x2"] = np.nan
    return frame


def regression_frame(rows: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    city = rng.choice(["paris", "oslo", "rome"], size=rows)
    y = 3 * x1 + (city == "oslo") * 2 + rng.normal(scale=0.1, size=rows)
    return pd.DataFrame({"x1": x1, "city": city, "y": y})


# What follows a training's success on a live server (XGEN_SHAP_SUMMARY_AFTER_SUCCESS):
# the events a finished training job may have after `succeeded`.
AFTER_SUCCESS = {"shap_summary"}


def shap_summary(client: Client, model_id: str, timeout: float = 60) -> dict[str, float]:
    """The model's SHAP importance once it is kept, just after its job succeeded."""

    def kept() -> dict[str, float] | None:
        try:
            return client.models.importance(model_id, "shap")
        except NotFoundError:
            return None

    return wait_for(kept, timeout, 0.1, f"the SHAP summary of model {model_id}")
