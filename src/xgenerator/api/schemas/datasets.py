from __future__ import annotations

from datetime import datetime

from pydantic import AliasPath, Field, computed_field

from xgenerator.api.schemas import Response


class ColumnPublic(Response):
    name: str
    dtype: str
    kind: str
    null_count: int


class DatasetPublic(Response):
    dataset_id: str = Field(validation_alias="id")
    dataset_name: str = Field(validation_alias="name")
    user_id: str
    original_format: str
    size_bytes: int
    row_count: int
    column_count: int
    columns: list[ColumnPublic] = Field(validation_alias=AliasPath("schema", "columns"))
    numeric_features: list[str] = Field(validation_alias=AliasPath("schema", "numeric_features"))
    categorical_features: list[str] = Field(
        validation_alias=AliasPath("schema", "categorical_features")
    )
    source_job_id: str | None
    # set for a dataset registered by reference (POST /datasets/register)
    source_uri: str | None = None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def null_counts(self) -> dict[str, int]:
        """Each column's nulls, keyed by name (also in `columns`; kept for clients)."""
        return {c.name: c.null_count for c in self.columns}


class DatasetList(Response):
    datasets: list[DatasetPublic]
    total: int
    limit: int
    offset: int
