"""`xgenerator serve` as a user runs it: no configuration, no service, one command.

The server is a real subprocess with its own private Redis and Celery worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support import classification_frame, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("XGEN_")}
        # polling every 0.1 s would spend the 120 reads a minute (tests/ops tests the limits)
        self.env.update(
            {
                "XGEN_DATA_DIR": str(data_dir),
                "PYTHONUNBUFFERED": "1",
                "XGEN_RATE_LIMIT_ENABLED": "false",
                **env,
            }
        )
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "xgenerator", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._healthy, 60, 0.1, "the embedded server to answer /health")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(self.log.read_text())
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def children(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(p) for p in out.split()]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", XGEN_LEASE_S="3", XGEN_PROGRESS_INTERVAL_S="0.1")
    srv.start()
    yield srv
    srv.stop()


def wait_status(
    http: httpx.Client, key: str, job_id: str, statuses: set[str], timeout: float = 90
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/jobs/{job_id}", headers={"X-API-Key": key}).json()
        return body if body["status"] in statuses else None

    return wait_for(check, timeout, 0.1, f"job {job_id} to be {statuses}")


def test_serve_runs_the_whole_flow(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        key = http.post("/users", json={"username": "ada", "email": "ada@example.com"}).json()[
            "api_key"
        ]
        h = {"X-API-Key": key}
        frame = classification_frame(300)
        dataset = http.post(
            "/datasets",
            headers=h,
            data={"dataset_name": "d"},
            files={"file": ("d.csv", frame.to_csv(index=False).encode())},
        )
        assert dataset.status_code == 201, dataset.text
        accepted = http.post(
            "/train",
            headers=h,
            json={
                "model_name": "m",
                "dataset_id": dataset.json()["dataset_id"],
                "task_type": "classification",
                "target": "label",
                "num_boost_round": 20,
            },
        )
        assert accepted.status_code == 202
        job = wait_status(http, key, accepted.json()["job_id"], {"succeeded", "failed"})
        assert job["status"] == "succeeded", job
        model = http.get(f"/models/{job['model_id']}", headers=h).json()
        assert model["labels"] == ["no", "yes"]
        rows = frame.drop(columns="label").head(3).replace({np.nan: None})
        predicted = http.post(
            f"/models/{job['model_id']}/predict",
            headers=h,
            json={"rows": rows.to_dict(orient="records")},
        )
        assert predicted.status_code == 200
        assert len(predicted.json()["predictions"]) == 3
        assert http.get("/jobs", headers=h).json()["total"] == 1
    assert (server.data_dir / "xgenerator.db").exists()


def test_children_die_with_the_server_even_on_sigkill(server: Server) -> None:
    children = server.children()
    assert len(children) == 2  # redis-server and the worker
    server.stop(signal.SIGKILL)

    def all_gone() -> bool:
        return not any(
            Path(f"/proc/{pid}").exists()
            and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
            for pid in children
        )

    wait_for(all_gone, 30, 0.1, "redis-server and the worker to exit")


def test_queued_jobs_survive_a_restart(tmp_path: Path) -> None:
    first = Server(
        tmp_path / "data",
        XGEN_LEASE_S="3",
        XGEN_WORKER_CONCURRENCY="1",
        XGEN_PROGRESS_INTERVAL_S="0.1",
    )
    first.start()
    with httpx.Client(base_url=first.url, timeout=30) as http:
        key = http.post("/users", json={"username": "ada", "email": "ada@example.com"}).json()[
            "api_key"
        ]
        h = {"X-API-Key": key}
        csv = classification_frame(2000).to_csv(index=False).encode()
        dataset_id = http.post(
            "/datasets", headers=h, data={"dataset_name": "d"}, files={"file": ("d.csv", csv)}
        ).json()["dataset_id"]
        body = {
            "model_name": "m",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 800,  # seconds of work: still running when killed
            "xgb_params": {"max_depth": 8, "eta": 0.01, "nthread": 1},
        }
        running = http.post("/train", headers=h, json=body).json()["job_id"]
        queued = http.post("/train", headers=h, json={**body, "num_boost_round": 5}).json()[
            "job_id"
        ]
        wait_status(http, key, running, {"running"})
        assert http.get(f"/jobs/{queued}", headers=h).json()["status"] == "queued"
    first.stop(signal.SIGKILL)  # everything dies at once: broker, worker, API

    second = Server(
        tmp_path / "data",
        first.port,
        XGEN_LEASE_S="3",
        XGEN_PROGRESS_INTERVAL_S="0.1",
        XGEN_RECONCILE_INTERVAL_S="1",  # the expired lease is seen within a second
    )
    second.start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            assert wait_status(http, key, queued, {"succeeded", "failed"})["status"] == "succeeded"
            # the killed job's lease expires and it is retried
            done = wait_status(http, key, running, {"succeeded", "failed"}, timeout=240)
            assert done["status"] == "succeeded"
            assert done["attempts"] == 2
    finally:
        second.stop()
