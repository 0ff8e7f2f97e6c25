"""Fixtures for the operations tests: services built with the settings a test asks for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.db.tables import Job, JobEvent
from xgenerator.settings import Settings

ADMIN_KEY = "admin-secret-long-enough-for-tests"
ADMIN = {"X-Admin-Key": ADMIN_KEY}


@dataclass
class Service:
    """One "API process": its settings, context and test client."""

    settings: Settings
    context: Context
    client: TestClient


ServiceFactory = Callable[..., Service]


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
