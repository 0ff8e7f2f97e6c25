from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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


class DataframeSplit(Request):
    """MLflow's `dataframe_split`: column names, then one list of values per row."""

    columns: list[str] = Field(min_length=1, max_length=MAX_ROW_KEYS)
    data: list[Annotated[list[Scalar], Field(max_length=MAX_ROW_KEYS)]] = Field(min_length=1)
    index: list[Scalar] | None = Field(
        default=None, description="pandas' `to_json(orient='split')` sends it; not used"
    )


Instance = Row | Annotated[list[Scalar], Field(max_length=MAX_ROW_KEYS)]
Columns = Annotated[dict[str, list[Scalar]], Field(min_length=1, max_length=MAX_ROW_KEYS)]
OutputChoice = Literal["label", "probability", "margin", "contributions"]
ExtraColumns = Literal["ignore", "error"]
ROW_FIELDS = ("rows", "dataframe_records", "dataframe_split", "instances", "inputs")


class PredictOptions(Request):
    output: OutputChoice | None = Field(
        default=None,
        description="What `predictions` holds: `label` (the class), `probability` "
        "({class: p}), `margin` (untransformed score; {class: margin} for multi-class), "
        "`contributions` (as with `explain`); by default the prediction with `probabilities`",
    )
    extra_columns: ExtraColumns = Field(
        default="ignore",
        description="Columns the model does not use: ignored and listed in "
        "`ignored_columns`, or `error` (a 422 naming them)",
    )


class PredictRequest(PredictOptions):
    """The rows in exactly one of: `rows` or MLflow's `dataframe_records` (objects),
    `dataframe_split` ({columns, data}), `instances` or `inputs` (objects, or lists of values
    in the model's feature order; `inputs` may also be {column: [values]})."""

    rows: list[Row] | None = Field(default=None, min_length=1)
    dataframe_records: list[Row] | None = Field(default=None, min_length=1)
    dataframe_split: DataframeSplit | None = None
    instances: list[Instance] | None = Field(default=None, min_length=1)
    inputs: list[Instance] | Columns | None = Field(default=None, min_length=1)
    params: dict[str, Any] | None = Field(
        default=None, description="MLflow's inference params: accepted and ignored"
    )
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
        given = [name for name in ROW_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of " + ", ".join(f"'{n}'" for n in ROW_FIELDS))
        return self


class PredictResponse(Response):
    model_id: str
    output: OutputChoice | None = Field(default=None, description="As asked")
    predictions: list[Any] = Field(
        description="Per row: a class label; a number (regression, a ranking score, a survival "
        "model's risk (cox) or time (aft)); or {level: value} for quantile regression; or "
        "what `output` asked for"
    )
    probabilities: list[dict[str, float]] | None = None
    ignored_columns: list[str] = Field(
        default_factory=list, description="Columns of the request the model does not use"
    )
    prediction_ids: list[str] | None = Field(default=None, description="With `log: true`")
    contributions: list[dict[str, Any]] | None = Field(
        default=None,
        description="With `explain: true`, per row: {column: value, ..., bias: value}, in "
        "margin units (log-odds of the second class for a binary classifier); for a "
        "multi-class model {class: {column: value, ..., bias: value}}",
    )


class ModelSignature(Response):
    model_id: str
    inputs: list[dict[str, Any]] = Field(
        description="Per dataset column the model reads: {name, kind, required, reads}; a "
        "categorical adds category_count and its first categories, a date-time its parts"
    )
    outputs: dict[str, Any] = Field(
        description="What `predictions` holds by default, the classes or quantile levels, "
        "and the `output` choices this model accepts"
    )


class Invocations(Response):
    """MLflow's scoring server answer."""

    predictions: list[Any]


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
