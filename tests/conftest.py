"""Fixtures over real services.

- Every database test runs on SQLite and on PostgreSQL (127.0.0.1:5432, database created per
  run). PostgreSQL or Redis unreachable: skip locally, fail when XGEN_REQUIRE_SERVICES=1 (CI).
- The broker is a private `redis-server` on a unix socket (as in embedded mode), or the shared
  Redis on 127.0.0.1:6379 for the distributed-mode tests.
- Worker tests start real `xgenerator worker` subprocesses.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support import S3Server, WorkerProcess, require_service
from tests.support.services import (
    ADMIN_KEY,
    PG_ADMIN_URL,
    REDIS_URL,
    TABLES,
    Service,
    ServiceFactory,
    make_settings,
)
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.engine import make_engine
from xgenerator.db.migrate import upgrade
from xgenerator.embedded import PrivateRedis, find_redis_server
from xgenerator.settings import Settings

# The suite's longest files (pytest --durations): started last, one of them would end the
# run alone while the other xdist processes sit idle. xdist hands out files in this order
# (`--no-loadscope-reorder`).
LONGEST_FIRST = (
    "tests/bench/",
    "tests/reliability/",
    "tests/test_embedded.py",
    "tests/ui/",
    "tests/client/test_demo.py",
    "tests/jobs/test_dask_training.py",
    "tests/jobs/test_tune_e2e.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        found = (i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix))
        return next(found, len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the order within a rank is kept


# --- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once; each test gets a copy, which is far faster than migrating again."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test run, migrated from empty."""
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL", exc)
        raise
    name = f"xgen_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def clean_postgres_url(postgres_url: str) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    engine.dispose()
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "xgenerator.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("clean_postgres_url")
    return url


# --- brokers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(find_redis_server(None))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_url(private_redis: PrivateRedis) -> str:
    client = redis.Redis(unix_socket_path=str(private_redis.socket))
    client.flushall()
    client.close()
    return private_redis.url


@pytest.fixture
def shared_redis_url() -> str:
    """The machine's Redis (distributed mode); flushed for each test that uses it."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        require_service("Redis", exc)
        raise
    finally:
        client.close()
    return REDIS_URL


# --- S3 storage ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on loopback, one per run (it comes with the dev extras)."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        require_service("moto[server]", exc)
        raise
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(s3_server: S3Server) -> dict[str, str]:
    """Settings values for a fresh, empty bucket on the test S3 server."""
    return s3_server.new_bucket()


# --- the service -----------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path, database_url: str, broker_url: str) -> Iterator[ServiceFactory]:
    """Builds services on this test's database; each call is another API process. The broker
    is the private Redis (as in embedded mode) unless `broker=` names another."""
    with ExitStack() as stack:

        def make(broker: str | None = None, **extra: Any) -> Service:
            extra.setdefault("admin_keys", ADMIN_KEY)
            settings = make_settings(tmp_path, database_url, broker or broker_url, **extra)
            context = build_context(settings)
            stack.callback(context.close)
            client = stack.enter_context(TestClient(create_app(settings, context)))
            return Service(settings, context, client)

        yield make


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str) -> Settings:
    return make_settings(tmp_path, database_url, broker_url)


@pytest.fixture
def distributed_settings(
    tmp_path: Path, clean_postgres_url: str, shared_redis_url: str
) -> Settings:
    """The distributed mode: PostgreSQL and the machine's Redis on 127.0.0.1."""
    return make_settings(tmp_path, clean_postgres_url, shared_redis_url)


@pytest.fixture
def context(settings: Settings) -> Iterator[Context]:
    ctx = build_context(settings)
    yield ctx
    ctx.close()


@pytest.fixture
def client(settings: Settings, context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(settings, context)) as test_client:
        yield test_client


@pytest.fixture
def worker(settings: Settings) -> Iterator[WorkerProcess]:
    """One real `xgenerator worker` subprocess (concurrency 2) on this test's services."""
    process = WorkerProcess(settings, name="w1", concurrency=2)
    process.start()
    yield process
    process.stop()
