from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from xgenerator.api.schemas import Request, Response


class ModelSummary(Response):
    model_id: str = Field(validation_alias="id")
    name: str
    version: int | None = Field(description="Its number among the models of its name")
    task_type: str
    target: str
    metrics: dict[str, Any]
    dataset_id: str | None
    job_id: str
    parent_model_id: str | None
    created_at: datetime


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

    @field_validator("excluded_features", mode="before")
    @classmethod
    def _no_exclusions_recorded(cls, value: object) -> object:
        return [] if value is None else value  # a model trained before the report existed

    @field_validator("dropped_rows", mode="before")
    @classmethod
    def _no_drops_recorded(cls, value: object) -> object:
        return {} if value is None else value


class ModelList(Response):
    models: list[ModelSummary]
    total: int
    limit: int
    offset: int


# A value in a prediction row is a JSON scalar: an object or a list where a number or a
# category belongs is a 422 here, not an error deep inside the model code. A row has at most
# as many keys as a dataset may have columns (extra keys are ignored, never built into columns).
Scalar = str | int | float | bool | None
MAX_ROW_KEYS = 2_000
Row = Annotated[dict[str, Scalar], Field(max_length=MAX_ROW_KEYS)]


class PredictRequest(Request):
    """`rows`, or MLflow's `dataframe_records`: a list of {column: value} objects."""

    rows: list[Row] | None = Field(default=None, min_length=1)
    dataframe_records: list[Row] | None = Field(default=None, min_length=1)
    log: bool = Field(
        default=False,
        description="Keep the predictions for feedback; their ids come back in `prediction_ids`",
    )
    explain: bool = Field(
        default=False,
        description="Also return each row's SHAP `contributions` (per dataset column, plus "
        "`bias`; they add up to the margin); for a multi-class model one set per class",
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
    predictions: list[Any] = Field(
        description="Per row: a class label; a number (regression, a ranking score, a survival "
        "model's risk (cox) or time (aft)); or {level: value} for quantile regression"
    )
    probabilities: list[dict[str, float]] | None = None
    prediction_ids: list[str] | None = Field(default=None, description="With `log: true`")
    contributions: list[dict[str, Any]] | None = Field(
        default=None,
        description="With `explain: true`, per row: {column: value, ..., bias: value}, in "
        "margin units (log-odds of the second class for a binary classifier); for a "
        "multi-class model {class: {column: value, ..., bias: value}}",
    )


class FeatureImportance(Response):
    feature: str
    value: float


class ImportanceResponse(Response):
    model_id: str
    type: str
    importance: list[FeatureImportance] = Field(description="Every feature, largest first")
    rows: int | None = Field(
        default=None, description="`shap`: the training rows the means were taken over"
    )
