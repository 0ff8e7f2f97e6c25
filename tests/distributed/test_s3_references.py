"""Datasets registered by reference from an S3 bucket (moto's server): read with the
service's S3 settings, fingerprinted by ETags, refused outside the allowed prefix."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.support import S3Server, auth, classification_frame, create_user
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset
from xgenerator.settings import Settings

MARKER = "PRIVATE_MARKER_COLUMN"


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"refs-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    frame = classification_frame(120)
    for i, part in enumerate((frame.iloc[:70], frame.iloc[70:])):
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        client.put_object(Bucket=name, Key=f"shared/churn/part-{i}.parquet", Body=buffer.getvalue())
    buffer = io.BytesIO()
    pd.DataFrame({MARKER: [1.0]}).to_parquet(buffer, index=False)
    client.put_object(Bucket=name, Key="private/p.parquet", Body=buffer.getvalue())
    return name


@pytest.fixture
def s3_client(
    tmp_path: Path, database_url: str, broker_url: str, s3_server: S3Server, bucket: str
) -> Iterator[tuple[TestClient, Context]]:
    settings: Settings = make_settings(
        tmp_path,
        database_url,
        broker_url,
        register_allowed_prefixes=f"s3://{bucket}/shared/",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key,
        s3_secret_access_key=s3_server.secret_key,
        s3_region=s3_server.region,
    )
    context = build_context(settings)
    with TestClient(create_app(settings, context)) as client:
        yield client, context
    context.close()


def test_register_a_bucket_folder_and_read_it(
    s3_client: tuple[TestClient, Context], bucket: str
) -> None:
    client, context = s3_client
    user = create_user(client)
    response = client.post(
        "/datasets/register",
        headers=auth(user),
        json={"dataset_name": "churn", "uri": f"s3://{bucket}/shared/churn/"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 120
    assert body["source_uri"] == f"s3://{bucket}/shared/churn"
    with context.db.session() as session:
        row = session.get(Dataset, body["dataset_id"])
        assert row is not None and row.source_fingerprint
        frame = datasets.load_frame(context.store, row, columns=["x1", "label"])
    assert len(frame) == 120
    assert list(frame.columns) == ["x1", "label"]
    assert frame["x1"].tolist() == classification_frame(120)["x1"].tolist()


@pytest.mark.parametrize("path", ["private/p.parquet", "shared/../private/p.parquet", "sharedx/a"])
def test_outside_the_prefix_is_refused(
    s3_client: tuple[TestClient, Context], bucket: str, path: str
) -> None:
    client, _ = s3_client
    user = create_user(client)
    response = client.post(
        "/datasets/register",
        headers=auth(user),
        json={"dataset_name": "x", "uri": f"s3://{bucket}/{path}"},
    )
    assert response.status_code == 403, response.text
    assert MARKER not in response.text
