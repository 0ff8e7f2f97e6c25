from __future__ import annotations

from datetime import datetime
from typing import Any

from xgenerator.api.schemas import Response
from xgenerator.db.tables import Dataset


class ColumnPublic(Response):
    name: str
    dtype: str
    kind: str
    null_count: int


class DatasetPublic(Response):
    dataset_id: str
    dataset_name: str
    user_id: str
    original_format: str
    size_bytes: int
    row_count: int
    column_count: int
    columns: list[ColumnPublic]
    numeric_features: list[str]
    categorical_features: list[str]
    null_counts: dict[str, int]
    source_job_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Dataset) -> DatasetPublic:
        schema: dict[str, Any] = row.schema
        return cls(
            dataset_id=row.id,
            dataset_name=row.name,
            user_id=row.user_id,
            original_format=row.original_format,
            size_bytes=row.size_bytes,
            row_count=row.row_count,
            column_count=row.column_count,
            columns=[ColumnPublic(**c) for c in schema["columns"]],
            numeric_features=schema["numeric_features"],
            categorical_features=schema["categorical_features"],
            null_counts={c["name"]: c["null_count"] for c in schema["columns"]},
            source_job_id=row.source_job_id,
            created_at=row.created_at,
        )


class DatasetList(Response):
    datasets: list[DatasetPublic]
    total: int
    limit: int
    offset: int
