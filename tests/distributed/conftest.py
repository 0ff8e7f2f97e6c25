"""The distributed mode on S3: PostgreSQL, the machine's Redis, moto's S3 server, and real
`xgenerator worker` subprocesses that share nothing with the API but those three."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.settings import Settings


@pytest.fixture
def s3_settings(distributed_settings: Settings, s3_storage: dict[str, str]) -> Settings:
    return distributed_settings.model_copy(
        update={
            **s3_storage,
            # these tests submit many jobs at once as one user, on purpose
            "rate_limit_enabled": False,
            "max_active_jobs_per_user": 0,
        }
    )


@pytest.fixture
def s3_context(s3_settings: Settings) -> Iterator[Context]:
    context = build_context(s3_settings)
    yield context
    context.close()


@pytest.fixture
def s3_client(s3_settings: Settings, s3_context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(s3_settings, s3_context)) as client:
        yield client
