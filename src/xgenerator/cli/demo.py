"""`xgenerator demo`, and a local server in a child process (the demo's, and the tests').

The demo runs the whole flow on scikit-learn's breast cancer data, which ships with
scikit-learn (no download): start a server, create a user, upload, train with a live
progress bar, predict, and say where to look in the dashboard.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from rich.table import Table

from xgenerator.client import Client, Job
from xgenerator.jobs.isolation import die_with_parent

if TYPE_CHECKING:
    import pandas as pd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalServer:
    """`xgenerator serve` (API, private Redis, worker) on a free port with its own data
    directory. XGEN_* variables of this process are not passed on: the child must not
    pick up someone's production database by accident; pass `env` to set some."""

    def __init__(
        self, data_dir: Path, port: int | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = dict(env or {})
        self.log = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("XGEN_")}
        env |= {"XGEN_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1", **self.env}
        command = [sys.executable, "-m", "xgenerator", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the server did not start on {self.url}:\n{tail}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, grace: float = 30.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def breast_cancer_frame() -> pd.DataFrame:
    """569 tumours, 30 measurements, and the diagnosis (malignant or benign)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame: pd.DataFrame = data.frame.copy()
    frame["diagnosis"] = frame.pop("target").map(dict(enumerate(data.target_names)))
    return frame


def run(console: Console, data_dir: Path | None, port: int | None, rounds: int, keep: bool) -> Job:
    """The whole demo; with `keep`, serves until Ctrl-C so the dashboard can be explored."""
    directory = data_dir or Path(tempfile.mkdtemp(prefix="xgen-demo-"))
    server = LocalServer(directory, port)
    with console.status(f"starting XGenerator on {server.url} (data in {directory})"):
        server.start()
    try:
        user = Client.create_user(server.url, f"demo-{uuid.uuid4().hex[:6]}", "demo@example.com")
        console.print(f"[green]✓[/] user [bold]{user.username}[/] created")
        with Client(server.url, user.api_key) as client:
            frame = breast_cancer_frame()
            dataset = client.datasets.upload(frame, "breast-cancer")
            console.print(
                f"[green]✓[/] uploaded {dataset.row_count} rows × "
                f"{dataset.column_count} columns as dataset {dataset.dataset_id}"
            )
            job = client.train(
                dataset,
                "diagnosis",
                model_name="breast-cancer",
                num_boost_round=rounds,
                xgb_params={"max_depth": 3, "eta": 0.05},
            )
            info = job.wait()
            assert info.model_id is not None  # noqa: S101 - a succeeded train job has one
            console.print(f"[green]✓[/] trained model {info.model_id}")
            _show_metrics(console, info.result or {})
            sample = frame.sample(6, random_state=7)
            prediction = client.predict(info.model_id, sample.drop(columns="diagnosis"))
            _show_predictions(
                console, sample, prediction.predictions, prediction.probabilities or []
            )
        console.print(f"\nDashboard: [bold cyan]{server.url}/ui/jobs/{job.id}[/]")
        console.print(f"Sign in there with the API key [bold]{user.api_key}[/]")
        console.print(f"From a shell: xgenerator login --url {server.url} --api-key {user.api_key}")
        if keep:
            console.print("Serving until Ctrl-C …")
            try:
                while server.process is not None and server.process.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                console.print("stopping")
        return job
    finally:
        server.stop()


def _show_metrics(console: Console, result: dict[str, object]) -> None:
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        return
    table = Table("metric", "validation", title="Model quality (held-out 20%)")
    for name, value in metrics.items():
        if isinstance(value, int | float):
            table.add_row(name, f"{value:.4f}")
    console.print(table)


def _show_predictions(
    console: Console,
    sample: pd.DataFrame,
    predicted: list[object],
    probabilities: list[dict[str, float]],
) -> None:
    table = Table("mean radius", "actual", "predicted", "P(predicted)", title="Predictions")
    for (_, row), label, proba in zip(sample.iterrows(), predicted, probabilities, strict=False):
        chance = proba.get(str(label), 0.0)
        table.add_row(
            f"{row['mean radius']:.2f}", str(row["diagnosis"]), str(label), f"{chance:.3f}"
        )
    console.print(table)
