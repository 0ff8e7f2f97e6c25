"""Derived datasets streamed through the artifact store, local and S3 (moto): read in chunks,
written as they come, and a failure part way leaves no partial file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from xgenerator.artifacts import ArtifactStore, open_store
from xgenerator.context import Context
from xgenerator.datasets.operations import normalize_parquet
from xgenerator.datasets.repository import derived_row
from xgenerator.db.tables import Dataset, Job, JobArtifact
from xgenerator.jobs.kinds.cleanup import run_cleanup
from xgenerator.jobs.kinds.derived import new_parquet, open_parquet
from xgenerator.settings import Settings
from xgenerator.users import service as users


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "file":
        return open_store(Settings(data_dir=tmp_path))
    storage: dict[str, str] = request.getfixturevalue("s3_storage")
    return open_store(Settings(**storage))  # type: ignore[arg-type]


def stored(store: ArtifactStore, frame: pd.DataFrame) -> str:
    key = store.new_key("datasets", ".parquet")
    with store.open(key, "wb") as handle:
        frame.to_parquet(handle, index=False)
    return key


def test_stream_a_derived_dataset_through_the_store(store: ArtifactStore) -> None:
    frame = pd.DataFrame({"a": np.arange(1000, dtype=float), "t": ["x"] * 1000})
    source_key = stored(store, frame)
    with open_parquet(store, source_key) as source, new_parquet(store) as (key, handle):
        _, written = normalize_parquet(source, handle, ["a"], "minmax", 128, lambda d, t: None)
    with open_parquet(store, key) as result:
        out = result.read().to_pandas()
    np.testing.assert_allclose(out["a"], frame["a"] / 999)
    assert written.rows == 1000 and store.size(key) > 0


def test_a_failure_part_way_deletes_the_partial_file(store: ArtifactStore) -> None:
    source_key = stored(store, pd.DataFrame({"a": np.arange(1000, dtype=float)}))
    keys: list[str] = []

    def stop(done: int, total: int) -> None:
        if done > 500:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        with open_parquet(store, source_key) as source, new_parquet(store) as (key, handle):
            keys.append(key)
            normalize_parquet(source, handle, ["a"], "zscore", 100, stop)
    assert keys and not store.exists(keys[0])
    assert store.exists(source_key)


def test_retention_keeps_the_file_of_a_derived_dataset(context: Context) -> None:
    """The job that made a dataset expires; the dataset (and so its file) stays."""
    with context.db.session() as session:
        user_id = users.create_user(session, "alice", "alice@example.com").user.id
    key = stored(context.store, pd.DataFrame({"a": [1.0]}))
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    with context.db.session() as session:
        job = Job(
            user_id=user_id,
            job_type="predict",
            status="succeeded",
            queue="predict",
            config={},
            created_at=long_ago,
            updated_at=long_ago,
            completed_at=long_ago,
        )
        session.add(job)
        session.flush()
        session.add(
            JobArtifact(
                job_id=job.id,
                name="predictions.parquet",
                storage_key=key,
                content_type="application/vnd.apache.parquet",
                size_bytes=1,
            )
        )
        session.add(
            derived_row(user_id, "predictions", key, 1, {"row_count": 1, "columns": []}, job.id)
        )
    run_cleanup(context, datetime.now(UTC))
    with context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Dataset)) == 1
    assert context.store.exists(key)
