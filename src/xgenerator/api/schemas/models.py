from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from xgenerator.api.schemas import Request, Response
from xgenerator.db.tables import Model


class ModelSummary(Response):
    model_id: str
    name: str
    task_type: str
    target: str
    metrics: dict[str, Any]
    dataset_id: str | None
    job_id: str
    parent_model_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Model) -> ModelSummary:
        return cls(
            model_id=row.id,
            name=row.name,
            task_type=row.task_type,
            target=row.target,
            metrics=row.metrics,
            dataset_id=row.dataset_id,
            job_id=row.job_id,
            parent_model_id=row.parent_model_id,
            created_at=row.created_at,
        )


class ModelDetail(ModelSummary):
    features: list[dict[str, Any]]
    params: dict[str, Any]
    history: list[dict[str, Any]]
    labels: list[Any] | None
    excluded_features: list[dict[str, Any]] = Field(
        default_factory=list, description="Columns training left out: {name, reason, detail}"
    )
    dropped_rows: dict[str, int] = Field(
        default_factory=dict, description='Rows training left out, by cause: "missing_target"'
    )
    row_count: int
    num_boost_round: int
    xgboost_version: str

    @classmethod
    def of(cls, row: Model) -> ModelDetail:
        return cls(
            **ModelSummary.of(row).model_dump(),
            features=row.features,
            params=row.params,
            history=row.history,
            labels=row.labels,
            excluded_features=row.excluded_features or [],
            dropped_rows=row.dropped_rows or {},
            row_count=row.row_count,
            num_boost_round=row.num_boost_round,
            xgboost_version=row.xgboost_version,
        )


class ModelList(Response):
    models: list[ModelSummary]
    total: int
    limit: int
    offset: int


Row = dict[str, Any]


class PredictRequest(Request):
    """`rows`, or MLflow's `dataframe_records`: a list of {column: value} objects."""

    rows: list[Row] | None = Field(default=None, min_length=1)
    dataframe_records: list[Row] | None = Field(default=None, min_length=1)
    log: bool = Field(
        default=False,
        description="Keep the predictions for feedback; their ids come back in `prediction_ids`",
    )

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.rows is None) == (self.dataframe_records is None):
            raise ValueError("send exactly one of 'rows' or 'dataframe_records'")
        return self

    @property
    def records(self) -> list[Row]:
        return self.rows if self.rows is not None else self.dataframe_records or []


class PredictResponse(Response):
    model_id: str
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None
    prediction_ids: list[str] | None = Field(default=None, description="With `log: true`")
