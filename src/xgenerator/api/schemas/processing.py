"""Dataset processing requests: one model per operation, told apart by `operation`, so an
unknown operation or an option the operation does not take is a 422 before any job exists."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from xgenerator.api.schemas import Request

Columns = Field(
    default=None,
    min_length=1,
    max_length=2000,
    description="Columns to use; default: every column the operation can use",
)
OutputName = Field(
    default=None,
    min_length=1,
    max_length=200,
    description="Name of the new dataset; default: derived from the source's",
)


class ProfileOptions(Request):
    columns: list[str] | None = Columns
    top_k: int = Field(default=10, ge=1, le=100, description="Top values kept per category")


class NormalizeOptions(Request):
    method: Literal["zscore", "minmax"] = "zscore"
    columns: list[str] | None = Columns
    output_name: str | None = OutputName


class AnomaliesOptions(Request):
    contamination: Literal["auto"] | Annotated[float, Field(gt=0, le=0.5)] = Field(
        default="auto", description="Expected share of anomalies, or 'auto' (sklearn's)"
    )
    columns: list[str] | None = Columns
    n_estimators: int = Field(default=100, ge=10, le=1000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    output_name: str | None = OutputName


class ProfileRequest(Request):
    operation: Literal["profile"]
    options: ProfileOptions = Field(default_factory=ProfileOptions)


class NormalizeRequest(Request):
    operation: Literal["normalize"]
    options: NormalizeOptions = Field(default_factory=NormalizeOptions)


class AnomaliesRequest(Request):
    operation: Literal["anomalies"]
    options: AnomaliesOptions = Field(default_factory=AnomaliesOptions)


ProcessRequest = Annotated[
    ProfileRequest | NormalizeRequest | AnomaliesRequest, Field(discriminator="operation")
]
