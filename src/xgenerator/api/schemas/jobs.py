from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from xgenerator.api.schemas import Request, Response
from xgenerator.jobs.repository import COUNT_LIMIT
from xgenerator.jobs.service import Cancellation
from xgenerator.jobs.status import JobStatus
from xgenerator.ml.ranking import DEFAULT_K as RANK_K
from xgenerator.ml.train import EVAL_TRAIN_EVERY

Name = Field(min_length=1, max_length=200)


class TrainRequest(Request):
    model_name: str = Name
    dataset_id: str = Field(min_length=1, max_length=64)
    task_type: Literal["classification", "regression", "ranking", "survival"] = Field(
        description="ranking needs `group_column`; survival needs `event_column` (target = time)"
    )
    target: str = Field(min_length=1, max_length=300)
    features: list[str] | None = Field(
        default=None,
        max_length=2000,
        description="Columns to use, as asked (only an all-missing one is left out). Omitted: "
        "every column but the target, less identifiers, constant, all-missing and "
        "too-many-level columns (reported as `excluded_features`)",
    )
    exclude_features: list[str] | None = Field(
        default=None, max_length=2000, description="Columns to switch off"
    )
    xgb_params: dict[str, Any] = Field(
        default_factory=dict,
        description="XGBoost parameters (an allow-list). Also: `objective: reg:quantileerror` "
        "with `quantile_alpha: [0.1, 0.9]`; `monotone_constraints: {column: 1 | -1}` and "
        "`interaction_constraints: [[column, ...], ...]` by numeric column name",
    )
    num_boost_round: int = Field(default=100, ge=1)
    early_stopping_rounds: int | None = Field(default=None, ge=1)
    test_size: float = Field(default=0.2, gt=0, lt=1)
    eval_train_every: int = Field(
        default=EVAL_TRAIN_EVERY,
        ge=0,
        description="Score the training set every k rounds (and on the last); 0: never.",
    )
    eval_every: int | None = Field(
        default=None,
        ge=1,
        description="Score the validation set every k rounds (and on the last). Default: "
        "every round with early stopping (which reads every one, and then allows only 1), "
        "else every ceil(num_boost_round / 20) rounds: a live curve of about 20 points (a "
        "pruning search's trials: the same rounds for all, see prune_every)",
    )
    weight_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="Numeric column of sample weights (>= 0); never a feature; metrics weighted",
    )
    group_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="Ranking: the query id column (rows need not be sorted)",
    )
    event_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="Survival: 1 if the event was observed at `target`'s time, 0 if censored",
    )
    rank_k: int = Field(
        default=RANK_K, ge=1, le=1000, description="Ranking: the k of the ndcg@k and map@k metrics"
    )
    external_memory: bool = Field(
        default=False,
        description="Train from batches of the dataset's Parquet row groups (XGBoost's "
        "external memory) instead of one in-memory frame: for data larger than a worker's "
        "memory (XGEN_WORKER_MEMORY_MB); the validation set is a bounded sample",
    )
    distributed: bool | None = Field(
        default=None,
        description="Train one model across the workers of the operator's Dask cluster "
        "(xgboost.dask; needs XGEN_DASK_SCHEDULER). Unset: on Dask when the dataset has at "
        "least XGEN_DASK_MIN_ROWS rows; false: never",
    )
    user_id: str | None = Field(default=None, description="If given, must be the key's user")

    @model_validator(mode="after")
    def _every_round_for_early_stopping(self) -> TrainRequest:
        if self.early_stopping_rounds and self.eval_every not in (None, 1):
            raise ValueError("eval_every must be 1 with early stopping, which reads every round")
        return self


class CVRequest(TrainRequest):
    """A /train request plus the cross-validation's folds."""

    folds: int = Field(
        default=5,
        ge=2,
        le=20,
        description="Folds are shuffled with `xgb_params.seed` (default 42); stratified by class "
        "for classification",
    )
    refit: bool = Field(
        default=False,
        description="Then train a model on every row for the best round's count (`model_id`)",
    )


class RetrainRequest(Request):
    dataset_id: str = Field(min_length=1, max_length=64)
    num_boost_round: int | None = Field(default=None, ge=1)
    xgb_params: dict[str, Any] | None = None
    test_size: float | None = Field(default=None, gt=0, lt=1)


class JobAccepted(Response):
    job_id: str
    job_type: str
    status: str
    created_at: datetime
    message: str


class Progress(Response):
    percent: float = 0.0
    round: int | None = None
    total_rounds: int | None = None
    message: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)


class JobError(Response):
    error_type: str
    message: str
    details: dict[str, Any] | None = None


class JobSummary(Response):
    job_id: str = Field(validation_alias="id")
    job_type: str
    status: JobStatus
    user_id: str
    model_name: str | None
    created_at: datetime
    completed_at: datetime | None
    model_id: str | None
    progress: Progress
    parent_job_id: str | None = Field(
        default=None, description="A search's trial: the search (`tune` job) it belongs to"
    )

    @field_validator("progress", mode="before")
    @classmethod
    def _no_progress_yet(cls, value: object) -> object:
        return value or {}


class JobDetail(JobSummary):
    started_at: datetime | None
    updated_at: datetime
    config: dict[str, Any] = Field(description="The job's checked request")
    attempts: int
    cancel_requested: bool
    result: dict[str, Any] | None
    error: JobError | None
    queue: str


class JobList(Response):
    jobs: list[JobSummary]
    total: int = Field(description=f"Matching jobs, counted up to {COUNT_LIMIT:,}")
    total_exact: bool = Field(
        default=True, description=f"False past {COUNT_LIMIT:,} matching jobs: `total` is a floor"
    )
    limit: int
    offset: int


class JobEventPublic(Response):
    id: int
    at: datetime
    event: str
    status: str
    message: str
    attempt: int


class JobEvents(Response):
    job_id: str
    events: list[JobEventPublic]


class CancelResponse(Response):
    message: str
    job_id: str
    previous_status: str
    status: str

    @classmethod
    def of(cls, cancellation: Cancellation) -> CancelResponse:
        done = cancellation.status == JobStatus.CANCELLED
        return cls(
            message="job cancelled" if done else "cancellation requested; it stops within a round",
            job_id=cancellation.job_id,
            previous_status=cancellation.previous_status,
            status=cancellation.status,
        )
