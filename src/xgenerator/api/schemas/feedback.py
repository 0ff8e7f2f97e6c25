"""Prediction feedback in, model performance out."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from xgenerator.api.schemas import Request, Response


class FeedbackItem(Request):
    prediction_id: str = Field(min_length=1, max_length=64)
    actual: bool | int | float | str = Field(description="The outcome that really happened")


class FeedbackRequest(Request):
    items: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


class FeedbackRecorded(Response):
    model_id: str
    recorded: int


class WindowPerformance(Response):
    start: datetime
    end: datetime
    predictions: int
    with_feedback: int
    without_feedback: int
    accuracy: float | None = None
    rmse: float | None = None
    mae: float | None = None


class Performance(Response):
    model_id: str
    task_type: str
    window: str
    predictions: int
    with_feedback: int
    without_feedback: int
    accuracy: float | None = None
    rmse: float | None = None
    mae: float | None = None
    windows: list[WindowPerformance]
