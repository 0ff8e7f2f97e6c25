"""Requests for jobs that run on a model."""

from __future__ import annotations

from pydantic import Field

from xgenerator.api.schemas import Request


class PredictBatchRequest(Request):
    dataset_id: str = Field(min_length=1, max_length=64)
    output_name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name of the predictions dataset"
    )
    explain: bool = Field(
        default=False,
        description="Also write SHAP contributions: `contribution_<column>` per feature and "
        "`contribution_bias` (margin units; for a multi-class model, of the predicted class)",
    )
