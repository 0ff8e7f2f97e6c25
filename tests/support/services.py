"""Settings and services for tests: one function makes every test's settings, and the
`service` fixture (tests/conftest.py) builds any number of "API processes" from them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from xgenerator.context import Context
from xgenerator.db.tables import Base, Job, JobEvent
from xgenerator.settings import Settings

PG_ADMIN_URL = os.environ.get("XGEN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _redis_db() -> int:
    """A database number of its own per test process (1-8; the benchmarks use 9 and up), so
    two runs, or two pytest-xdist workers of one run, do not consume each other's messages.
    An xdist worker ("gw0", "gw1", …) counts on from its run's controller, its parent."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        return 1 + (os.getppid() + int(worker[2:])) % 8
    return 1 + os.getpid() % 8


REDIS_URL = os.environ.get("XGEN_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{_redis_db()}")
TABLES = [table.name for table in Base.metadata.sorted_tables]
ADMIN_KEY = "admin-secret-long-enough-for-tests"
ADMIN = {"X-Admin-Key": ADMIN_KEY}


def make_settings(tmp_path: Path, database_url: str, broker_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "broker_url": broker_url,
        "storage_url": (tmp_path / "artifacts").as_uri(),
        "progress_interval_s": 0.05,
        "reconcile_interval_s": 1.0,
        # tests place checkpoints by rounds (checkpoint_every), whatever the clock says
        "checkpoint_min_interval_s": 0.0,
        # a model's SHAP summary is there when its job has succeeded (tests/jobs/
        # test_shap_summary.py follows the default: just after)
        "shap_summary_after_success": False,
        "max_upload_mb": 5,
        # Suites send many requests and jobs quickly; tests/ops turns these on explicitly.
        "rate_limit_enabled": False,
        "max_active_jobs_per_user": 0,
    }
    values.update(extra)
    (tmp_path / "data").mkdir(exist_ok=True)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Service:
    """One "API process": its settings, context and test client."""

    settings: Settings
    context: Context
    client: TestClient


ServiceFactory = Callable[..., Service]


def add_job(
    context: Context,
    user_id: str,
    status: str,
    finished: datetime | None,
    job_type: str = "noop",
    queue: str = "train",
    **fields: Any,
) -> str:
    """A job row as it would be after running, finished at `finished`, with one event."""
    at = finished or datetime.now(UTC)
    values: dict[str, Any] = {
        "created_at": at,
        "updated_at": at,
        "started_at": finished,
        "completed_at": finished,
        **fields,
    }
    with context.db.session() as session:
        job = Job(
            user_id=user_id, job_type=job_type, status=status, queue=queue, config={}, **values
        )
        session.add(job)
        session.flush()
        session.add(JobEvent(job_id=job.id, event=status, status=status, at=at))
        return job.id


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """`/metrics` parsed by prometheus-client's own parser: {(sample, labels): value}."""
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
