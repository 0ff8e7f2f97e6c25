"""Datasets as stored objects: a Parquet file in the artifact store plus a row in the database."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xgenerator.artifacts import ArtifactStore
from xgenerator.context import Context
from xgenerator.datasets import references
from xgenerator.datasets.ingest import IngestLimits, describe, ingest
from xgenerator.db.tables import Dataset, new_id
from xgenerator.errors import InvalidInput, NotFound


def create_from_upload(context: Context, user_id: str, name: str, upload: Path) -> Dataset:
    """Validate and store an uploaded file. A failure leaves neither a row nor a file."""
    settings = context.settings
    limits = IngestLimits(settings.max_dataset_rows, settings.max_dataset_columns)
    with tempfile.TemporaryDirectory(dir=upload.parent) as scratch:
        parquet = Path(scratch) / "dataset.parquet"
        result = ingest(upload, parquet, limits)
        key = context.store.new_key("datasets", ".parquet")
        context.store.put_file(parquet, key)
        size = parquet.stat().st_size
    try:
        with context.db.session() as session:
            row = Dataset(
                user_id=user_id,
                name=name,
                original_format=result.original_format,
                storage_key=key,
                size_bytes=size,
                row_count=result.row_count,
                column_count=result.column_count,
                schema=result.schema,
            )
            session.add(row)
    except BaseException:
        context.store.delete(key)
        raise
    return row


def create_from_reference(context: Context, user_id: str, name: str, uri: str) -> Dataset:
    """Register Parquet the user already stores under an allowed prefix, without copying it.

    The location is checked before anything is read (`references.check_location`)."""
    settings = context.settings
    allowed = settings.register_prefix_list
    location = references.check_location(uri, allowed)
    limits = IngestLimits(settings.max_dataset_rows, settings.max_dataset_columns)
    fs = references.filesystem(location, context.store.s3_options)
    try:
        found = references.inspect(fs, location, allowed, limits)
    except FileNotFoundError as exc:
        raise InvalidInput("nothing exists at this location", {"uri": uri}) from exc
    with context.db.session() as session:
        row = Dataset(
            id=new_id(),
            user_id=user_id,
            name=name,
            original_format="parquet",
            # never a file of the store: nothing the service deletes or sweeps
            storage_key=f"references/{new_id()}",
            size_bytes=found.size_bytes,
            row_count=found.row_count,
            column_count=found.column_count,
            schema=found.schema,
            source_uri=location.uri,
            source_fingerprint=found.fingerprint,
        )
        session.add(row)
    return row


def create_from_frame(
    context: Context,
    session: Session,
    user_id: str,
    name: str,
    frame: pd.DataFrame,
    source_job_id: str | None = None,
) -> Dataset:
    """Register a dataset the service derived itself (a processing or prediction result)."""
    key = context.store.new_key("datasets", ".parquet")
    with context.store.open(key, "wb") as handle:
        frame.to_parquet(handle, index=False)
    schema = describe(frame)
    row = Dataset(
        user_id=user_id,
        name=name,
        original_format="parquet",
        storage_key=key,
        size_bytes=context.store.size(key),
        row_count=len(frame),
        column_count=len(frame.columns),
        schema=schema,
        source_job_id=source_job_id,
    )
    session.add(row)
    session.flush()
    return row


def derived_row(
    user_id: str,
    name: str,
    key: str,
    size: int,
    schema: dict[str, Any],
    source_job_id: str | None,
) -> Dataset:
    """An unsaved row for a Parquet file a job already wrote at `key`: the job adds it in the
    transaction that marks it succeeded, so the dataset and the job's success land together."""
    return Dataset(
        id=new_id(),
        user_id=user_id,
        name=name,
        original_format="parquet",
        storage_key=key,
        size_bytes=size,
        row_count=schema["row_count"],
        column_count=len(schema["columns"]),
        schema=schema,
        source_job_id=source_job_id,
    )


def get_owned(session: Session, user_id: str, dataset_id: str) -> Dataset:
    """The user's dataset; another user's is reported exactly like a missing one."""
    row = session.get(Dataset, dataset_id)
    if row is None or row.user_id != user_id:
        raise NotFound("dataset", dataset_id)
    return row


def list_owned(
    session: Session, user_id: str, limit: int, offset: int
) -> tuple[list[Dataset], int]:
    query = select(Dataset).where(Dataset.user_id == user_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = query.order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page)), total


def delete(context: Context, dataset: Dataset) -> None:
    """Remove the row first; the file goes only once that is committed, so a failure in
    between leaves an orphan file (harmless) rather than a row pointing at nothing."""
    with context.db.session() as session:
        row = session.get(Dataset, dataset.id)
        if row is not None:
            session.delete(row)
    if dataset.source_uri is None:  # a referenced dataset's files are the user's
        context.store.delete(dataset.storage_key)


def load_frame(
    store: ArtifactStore, row: Dataset, columns: list[str] | None = None
) -> pd.DataFrame:
    """Read the stored Parquet (memory-mapped when local), only the columns asked for; a
    referenced dataset's file or folder of files as one table."""
    if row.source_uri is not None:
        table = references.read_table(
            row.source_uri, row.source_fingerprint, store.s3_options, columns
        )
        referenced: pd.DataFrame = table.to_pandas()
        return referenced
    local = store.local_path(row.storage_key)
    if local is not None:
        table = pq.read_table(local, columns=columns, memory_map=True)
    else:
        with store.open(row.storage_key) as handle:
            table = pq.read_table(handle, columns=columns)
    frame: pd.DataFrame = table.to_pandas()
    return frame
