"""`xgenerator demo` end to end, and a server that stops promptly with streams open.

Each test starts its own server (the demo's, and one to stop), not the module's."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.live import SERVER_ENV, long_job, running_with_rounds
from tests.support import classification_frame, wait_for
from xgenerator.cli.demo import LocalServer
from xgenerator.client import Client, ClientError, ConnectionFailed


def test_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XGEN_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xgenerator",
            "demo",
            "--no-keep",
            "--rounds",
            "40",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())  # Rich wraps long lines
    assert "uploaded 569 rows × 31 columns" in out
    assert "trained model" in out and "roc_auc" in out and "Predictions" in out
    assert "/ui/jobs/" in out and "xgenerator login --url http://127.0.0.1:" in out
    assert (tmp_path / "demo" / "xgenerator.db").exists()


def test_stop_does_not_wait_for_open_streams(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "data", env=SERVER_ENV)
    server.start(timeout=180)
    try:
        user = Client.create_user(server.url, "sam", "sam@example.com")
        with Client(server.url, user.api_key) as client:
            job = long_job(client, client.datasets.upload(classification_frame(100)).dataset_id)
            wait_for(lambda: running_with_rounds(job), 120, 0.2, "the job to run")

            outcome: list[BaseException] = []
            streaming = threading.Event()

            def follow() -> None:
                try:
                    for _ in job.stream():
                        streaming.set()
                except ClientError as exc:
                    outcome.append(exc)

            follower = threading.Thread(target=follow, daemon=True)
            follower.start()
            assert streaming.wait(60), "the stream never delivered a message"
            started = time.monotonic()
            server.stop(grace=60)
            assert time.monotonic() - started < 20
            # the client retries, then gives up with a clear error (before it is closed)
            follower.join(60)
            assert not follower.is_alive()
            assert outcome and isinstance(outcome[0], ConnectionFailed)
    finally:
        server.stop()
