"""What the API returns, as typed objects. Unknown fields are ignored, so an older client
keeps working against a newer server."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FINAL = ("succeeded", "failed", "cancelled")


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(Record):
    user_id: str
    username: str
    email: str
    created_at: datetime


class NewUser(User):
    api_key: str = Field(description="Shown once by the server; keep it")


class Column(Record):
    name: str
    dtype: str
    kind: str
    null_count: int


class Dataset(Record):
    dataset_id: str
    dataset_name: str
    original_format: str
    size_bytes: int
    row_count: int
    column_count: int
    columns: list[Column]
    created_at: datetime


class Progress(Record):
    percent: float = 0.0
    round: int | None = None
    total_rounds: int | None = None
    message: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)


class JobErrorInfo(Record):
    error_type: str
    message: str
    details: dict[str, Any] | None = None


class JobInfo(Record):
    """A job's state; list endpoints fill only the summary fields."""

    job_id: str
    job_type: str
    status: str
    model_name: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    model_id: str | None = None
    progress: Progress = Field(default_factory=Progress)
    started_at: datetime | None = None
    attempts: int | None = None
    cancel_requested: bool | None = None
    result: dict[str, Any] | None = None
    error: JobErrorInfo | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


class JobEvent(Record):
    id: int
    at: datetime
    event: str
    status: str
    message: str
    attempt: int


class Model(Record):
    """A trained model; `get` fills the detail fields (features, params, history...)."""

    model_id: str
    name: str
    version: int | None = None
    task_type: str
    target: str
    metrics: dict[str, Any]
    dataset_id: str | None = None
    job_id: str
    created_at: datetime
    features: list[dict[str, Any]] | None = None
    params: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    labels: list[Any] | None = None
    num_boost_round: int | None = None
    excluded_features: list[dict[str, Any]] | None = None
    dropped_rows: dict[str, int] | None = None


class Prediction(Record):
    model_id: str
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None
    output: str | None = None
    ignored_columns: list[str] = Field(default_factory=list)
    # with explain=True: per row {column: value, ..., "bias": value} (margin units); for a
    # multi-class model {class: {column: value, ..., "bias": value}}
    contributions: list[dict[str, Any]] | None = None


class Artifact(Record):
    """A file a job produced; `Job.download(name, path)` fetches it."""

    name: str
    content_type: str
    size: int
    download_url: str


class JobResult(Record):
    job_id: str
    job_type: str
    status: str
    result: dict[str, Any] | None = None
    error: JobErrorInfo | None = None
    artifacts: list[Artifact] = Field(default_factory=list)


class AliasMove(Record):
    """One move of an alias: `to_version` None when it was removed."""

    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    at: datetime


class RegisteredModel(Record):
    """The versions of one model name (newest first), its aliases and their moves."""

    name: str
    versions: list[Model]
    aliases: dict[str, int]
    history: list[AliasMove]
