from __future__ import annotations

from typing import Any

from pydantic import Field

from xgenerator.api.schemas import Response


class JobHistory(Response):
    job_id: str
    total_points: int = Field(description="Rounds recorded, before downsampling")
    metrics: list[str] = Field(description="Metric names, e.g. train-logloss")
    points: list[dict[str, Any]] = Field(description="{round, <metric>: value, ...} per point")
