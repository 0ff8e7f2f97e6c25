"""Starting the services to measure, and the state of one run (sizes and rows: `bench.report`).

Services are the real thing: `xgenerator api` (uvicorn) and `xgenerator worker` (Celery,
prefork) subprocesses on the machine's Redis (a dedicated, flushed database number) and a
throw-away PostgreSQL database or SQLite file. Baselines run in the same process or as
subprocesses of the same run, so every figure is a ratio taken under the same machine load.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import psycopg
import redis

from bench import REDIS_URL
from bench.report import Config
from xgenerator.context import Context, build_context
from xgenerator.db.engine import make_engine
from xgenerator.db.migrate import upgrade
from xgenerator.jobs.isolation import die_with_parent
from xgenerator.settings import Settings

T = TypeVar("T")
DbKind = Literal["postgresql", "sqlite"]

# The tests' PostgreSQL unless told otherwise; each run creates and drops its own database.
PG_ADMIN_URL = (
    os.environ.get("XGEN_BENCH_PG_URL")
    or os.environ.get("XGEN_TEST_PG_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)
ROOT = Path(__file__).resolve().parent.parent
START = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the table."""
    print(f"[{time.monotonic() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A child in its own process group, logging to a file; stopped with SIGTERM, then KILL.

    Started at construction, waited for separately (`wait_ready`), so that several services
    start at once: their imports dominate start-up on a small machine.
    """

    ready_line = ""  # a child is ready once its log shows this line (if set)

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        with self.log.open("ab") as handle:
            self.popen = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # a benchmark killed by its caller (the CI smoke test's timeout) leaves no
                # service behind to consume a later run's messages
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited ({self.popen.returncode}):\n{self.output()[-3000:]}"
            )

    def is_ready(self) -> bool:
        return self.ready_line in self.output()

    def wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            self.check_alive()
            return self.is_ready()

        wait_until(ready, timeout, f"{self.name} to be ready", 0.1)

    def stop(self, grace: float = 20.0) -> None:
        if self.popen.poll() is not None:
            return
        started = time.monotonic()
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        if time.monotonic() - started > 2:
            log(f"{self.name} took {time.monotonic() - started:.1f}s to stop")


def base_env() -> dict[str, str]:
    """The caller's environment without XGEN_ variables, so each service sees only ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("XGEN_") or k.startswith("XGEN_BENCH_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class HttpServer(Process):
    """A uvicorn server (service or bare baseline), ready once it answers `probe`."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        logs: Path,
        port: int,
        probe: str,
        wait: bool = True,
    ) -> None:
        super().__init__(name, command, env, logs)
        self.url = f"http://127.0.0.1:{port}"
        self.probe = probe
        if wait:
            self.wait_ready()

    def is_ready(self) -> bool:
        try:
            return httpx.get(self.url + self.probe, timeout=1).status_code == 200
        except httpx.TransportError:
            return False


def bare_api(logs: Path, extra_env: dict[str, str] | None = None) -> HttpServer:
    """`bench.bare_api` under uvicorn with the settings `xgenerator api` uses (its defaults)."""
    port = free_port()
    env = base_env() | (extra_env or {})
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_api:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return HttpServer("bare-api", command, env, logs, port, "/health", wait=False)


def mlflow_server(model_file: Path, logs: Path) -> HttpServer:
    """MLflow's scoring server (`mlflow models serve --env-manager local`, one uvicorn worker,
    its default) for the booster in `model_file`, saved as an MLflow model first
    (`bench.mlflow_serve`); ready once `/ping` answers."""
    port = free_port()
    env = base_env() | {
        # `models serve` execs `uvicorn` by name: this environment's
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        # no tracking server: nothing is logged, and no ./mlruns appears in the checkout
        "MLFLOW_TRACKING_URI": (logs / "mlruns").as_uri(),
    }
    model_dir = logs / "mlflow-model"
    command = [sys.executable, "-m", "bench.mlflow_serve", str(model_file), str(model_dir)]
    return HttpServer("mlflow-serve", [*command, str(port)], env, logs, port, "/ping", wait=False)


class BareCeleryWorker(Process):
    """A plain Celery worker for `bench.bare_celery`, with the flags `xgenerator worker` uses."""

    ready_line = " ready."

    def __init__(self, name: str, logs: Path, concurrency: int) -> None:
        env = base_env()
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.bare_celery",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--queues",
            "bare",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}@%h",
        ]
        super().__init__(name, command, env, logs)


class ServiceWorker(Process):
    """`xgenerator worker`, all CPU queues."""

    ready_line = " ready."


# --- the service -----------------------------------------------------------------------------


class ThrowawayDatabase:
    """A migrated PostgreSQL database (dropped at close) or SQLite file, just for this run."""

    def __init__(self, kind: DbKind, directory: Path, migrate: bool = True) -> None:
        """`migrate=False`: the caller migrates (with the code version it runs)."""
        self.kind = kind
        self.name = f"xgen_bench_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            self.url = f"sqlite:///{directory / 'xgenerator.db'}"
        else:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
            base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            self.url = f"{base}/{self.name}"
        if not migrate:
            return
        engine = make_engine(self.url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    @property
    def label(self) -> str:
        return "PostgreSQL" if self.kind == "postgresql" else "SQLite"

    def connect_dsn(self) -> str:
        """The DSN for psycopg itself (no SQLAlchemy driver suffix)."""
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def drop(self) -> None:
        if self.kind == "postgresql":
            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


NOTIFY_FINAL = """
CREATE OR REPLACE FUNCTION bench_notify_final() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('succeeded', 'failed', 'cancelled') THEN
        PERFORM pg_notify('bench_job_final', NEW.id || ':' || NEW.status);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER bench_notify_final AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION bench_notify_final();
"""


class FinalJobs:
    """Learns that a job ended the moment its final status commits (PostgreSQL LISTEN/NOTIFY,
    from a trigger on the benchmark's own database), the way `.get()` learns of a Celery
    result through Redis pub/sub: no polling that would steal CPU from the worker measured."""

    def __init__(self, db: ThrowawayDatabase) -> None:
        if db.kind != "postgresql":
            raise ValueError("FinalJobs needs PostgreSQL")
        self.conn = psycopg.connect(db.connect_dsn(), autocommit=True)
        self.conn.execute(NOTIFY_FINAL)
        self.conn.execute("LISTEN bench_job_final")
        self.seen: dict[str, str] = {}

    def wait(self, job_ids: set[str], timeout: float = 120) -> dict[str, str]:
        """Block until every job in `job_ids` is final; their statuses."""
        deadline = time.monotonic() + timeout
        while not job_ids <= self.seen.keys():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = len(job_ids - self.seen.keys())
                raise TimeoutError(f"{missing} job(s) not final after {timeout:g}s")
            heard = False
            for note in self.conn.notifies(
                timeout=min(remaining, 1.0), stop_after=len(job_ids - self.seen.keys())
            ):
                job_id, _, status = note.payload.partition(":")
                self.seen[job_id] = status
                heard = True
            if not heard:  # a job that ended before LISTEN began sent its note to nobody
                self._read_final(job_ids - self.seen.keys())
        return {job_id: self.seen[job_id] for job_id in job_ids}

    def _read_final(self, job_ids: set[str]) -> None:
        rows = self.conn.execute(
            "SELECT id, status FROM jobs WHERE id = ANY(%s)"
            " AND status IN ('succeeded', 'failed', 'cancelled')",
            [list(job_ids)],
        ).fetchall()
        self.seen.update({str(job_id): str(status) for job_id, status in rows})

    def close(self) -> None:
        self.conn.close()


class Stack:
    """One XGenerator deployment: database, artifact directory, API server, workers."""

    def __init__(self, kind: DbKind, workdir: Path, migrate: bool = True) -> None:
        self.dir = workdir / f"stack-{kind}-{uuid.uuid4().hex[:6]}"
        (self.dir / "data").mkdir(parents=True)
        self.db = ThrowawayDatabase(kind, self.dir, migrate)
        self.settings = Settings(
            data_dir=self.dir / "data",
            database_url=self.db.url,
            broker_url=REDIS_URL,
            storage_url=(self.dir / "artifacts").as_uri(),
        )
        self.env = base_env() | {
            "XGEN_DATA_DIR": str(self.settings.data_dir),
            "XGEN_DATABASE_URL": self.settings.resolved_database_url,
            "XGEN_BROKER_URL": REDIS_URL,
            "XGEN_STORAGE_URL": self.settings.resolved_storage_url,
            # Measured here is the machinery, not the limits in front of it: the benchmarks
            # submit hundreds of jobs per second as one user.
            "XGEN_RATE_LIMIT_ENABLED": "false",
            "XGEN_MAX_ACTIVE_JOBS_PER_USER": "0",
        }
        port = free_port()
        self.api = HttpServer(
            f"api-{kind}",
            [sys.executable, "-m", "xgenerator", "api", "--port", str(port)],
            self.env,
            self.dir,
            port,
            "/health",
            wait=False,
        )
        self.workers: list[ServiceWorker] = []
        self.http = httpx.Client(base_url=self.api.url, timeout=120)
        self._context: Context | None = None
        self._final: FinalJobs | None = None
        self._serial = 0

    @property
    def context(self) -> Context:
        """An in-process context on the same database and store, to seed data directly."""
        if self._context is None:
            self._context = build_context(self.settings)
        return self._context

    @property
    def final_jobs(self) -> FinalJobs:
        if self._final is None:
            self._final = FinalJobs(self.db)
        return self._final

    def spawn_workers(self, count: int, concurrency: int = 2) -> None:
        """Up to `count` worker processes, each running `concurrency` jobs at once."""
        while len(self.workers) < count:
            self._serial += 1
            name = f"worker{self._serial}"
            command = [
                sys.executable,
                "-m",
                "xgenerator",
                "worker",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--loglevel",
                "INFO",
            ]
            self.workers.append(ServiceWorker(name, command, self.env, self.dir))

    def start_workers(self, count: int, concurrency: int = 2) -> None:
        """`spawn_workers`, then wait for them and for the API."""
        self.spawn_workers(count, concurrency)
        self.wait_ready()

    def wait_ready(self) -> None:
        for process in [self.api, *self.workers]:
            process.wait_ready()

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def create_user(self) -> dict[str, str]:
        """A new user; returns the headers that authenticate as them plus `user_id`."""
        name = f"bench{uuid.uuid4().hex[:8]}"
        response = self.http.post("/users", json={"username": name, "email": f"{name}@example.com"})
        response.raise_for_status()
        body = response.json()
        return {"X-API-Key": body["api_key"], "user_id": body["user_id"]}

    def close(self) -> None:
        self.http.close()
        if self._final is not None:
            self._final.close()
        self.stop_workers()
        self.api.stop()
        if self._context is not None:
            self._context.close()
        self.db.drop()


def headers(user: dict[str, str]) -> dict[str, str]:
    return {"X-API-Key": user["X-API-Key"]}


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


# --- one run -----------------------------------------------------------------------------------


IN_PROCESS = frozenset({"serving"})  # benchmarks that need no service running
ON_SQLITE = frozenset({"listing", "online"})  # benchmarks that use the SQLite (embedded) stack


@dataclass
class Bench:
    """State of one `python -m bench` run: sizes, scratch space, services shared by benchmarks."""

    config: Config
    workdir: Path
    resources: ExitStack = field(default_factory=ExitStack)
    shared: dict[str, Any] = field(default_factory=dict)
    _stacks: dict[str, Stack] = field(default_factory=dict)
    _bare_api: HttpServer | None = None
    _bare_celery: BareCeleryWorker | None = None

    def prestart(self, names: list[str]) -> None:
        """Start every service the chosen benchmarks need, at once and without waiting: on a
        small machine start-up is mostly imports, and they overlap."""
        needs_workers = bool(
            {"training", "memory", "realdata", "tune", "queue", "prediction"} & set(names)
        )
        if set(names) - IN_PROCESS - {"online"}:  # starting up, it would share the CPUs
            self._spawn_stack("postgresql", 1 if needs_workers else 0)
        if ON_SQLITE & set(names):
            self._spawn_stack("sqlite", 0)
        if {"submission", "prediction", "listing", "online"} & set(names):
            self._spawn_bare_api()
        if "queue" in names:
            self._spawn_bare_celery()
        for name in names:  # what a benchmark prepares while the services start
            prepare = getattr(importlib.import_module(f"bench.{name}"), "prestart", None)
            if prepare is not None:
                prepare(self)

    def _spawn_stack(self, kind: DbKind, workers: int) -> Stack:
        if kind not in self._stacks:
            log(f"starting XGenerator on {kind}")
            stack = Stack(kind, self.workdir)
            self.resources.callback(stack.close)
            self._stacks[kind] = stack
        stack = self._stacks[kind]
        stack.spawn_workers(workers)
        return stack

    def spawn_stack(self, kind: DbKind) -> Stack:
        """The shared deployment on `kind`, perhaps still starting (its database is ready)."""
        return self._spawn_stack(kind, 0)

    def stack(self, kind: DbKind = "postgresql", workers: int = 0) -> Stack:
        """The shared deployment on `kind`, ready, with at least `workers` worker processes
        (each running two jobs at once)."""
        stack = self._spawn_stack(kind, workers)
        stack.wait_ready()
        return stack

    @property
    def model_files(self) -> tuple[Path, Path]:
        """Where the prediction benchmark puts the booster and categories the bare API serves."""
        return self.workdir / "bare-model.ubj", self.workdir / "bare-categories.json"

    def _spawn_bare_api(self) -> HttpServer:
        if self._bare_api is None:
            model, categories = self.model_files
            server = bare_api(
                self.workdir,
                {"BENCH_MODEL_PATH": str(model), "BENCH_CATEGORIES_PATH": str(categories)},
            )
            self.resources.callback(server.stop)
            self._bare_api = server
        return self._bare_api

    def bare_api(self) -> HttpServer:
        server = self._spawn_bare_api()
        server.wait_ready()
        return server

    def _spawn_bare_celery(self) -> BareCeleryWorker:
        if self._bare_celery is None:
            worker = BareCeleryWorker("bare-celery", self.workdir, concurrency=2)
            self.resources.callback(worker.stop)
            self._bare_celery = worker
        return self._bare_celery

    def spawn(self, server: HttpServer) -> HttpServer:
        """A server a benchmark started, stopped with the run."""
        self.resources.callback(server.stop)
        return server

    def bare_celery(self) -> BareCeleryWorker:
        """One plain Celery worker with two pool processes, like the service's worker."""
        worker = self._spawn_bare_celery()
        worker.wait_ready()
        return worker

    def close(self) -> None:
        self.resources.close()
        flush_redis()
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_json_script(module: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m module args` and parse the JSON object it prints last."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=(env or base_env()),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{result.stderr[-3000:]}")
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed
