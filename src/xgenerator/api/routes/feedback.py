"""Prediction feedback: outcomes of logged predictions, and performance over time."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from xgenerator.api.deps import ContextDep, CurrentUser
from xgenerator.api.schemas.feedback import FeedbackRecorded, FeedbackRequest, Performance
from xgenerator.models import feedback

router = APIRouter(tags=["models"])


@router.post("/models/{model_id}/feedback", response_model=FeedbackRecorded)
async def record_feedback(
    model_id: str, body: FeedbackRequest, user: CurrentUser, context: ContextDep
) -> FeedbackRecorded:
    """Unknown prediction ids (or another model's) are a 422 listing them; nothing is kept."""
    items = [(item.prediction_id, item.actual) for item in body.items]
    recorded = await run_in_threadpool(feedback.record_feedback, context, user.id, model_id, items)
    return FeedbackRecorded(model_id=model_id, recorded=recorded)


@router.get("/models/{model_id}/performance", response_model=Performance)
async def model_performance(
    model_id: str, user: CurrentUser, context: ContextDep, window: Literal["hour", "day"] = "day"
) -> Performance:
    numbers = await run_in_threadpool(feedback.performance, context, user.id, model_id, window)
    return Performance(**numbers)
