"""Following a job live: Server-Sent Events read from the database, and per-round history.

The stream polls the database (`jobs/stream.py`), so it works with any number of API
processes and in both modes. Each message's `id:` is a cursor; reconnecting with it as
`Last-Event-ID` resumes without gaps or repeats.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from xgenerator.api.deps import ContextDep, OwnedJob, SessionDep
from xgenerator.api.schemas.stream import JobHistory
from xgenerator.context import Context
from xgenerator.errors import ServiceUnavailable
from xgenerator.jobs.stream import Cursor, Follower, Message, downsample, metric_names, rounds

log = logging.getLogger(__name__)
router = APIRouter(tags=["jobs"])

# A comment line now and then keeps proxies and load balancers from closing a quiet stream.
KEEPALIVE_S = 15.0

STREAM_DOC = """Server-Sent Events: `event` (a job event), `status` (after each change),
`progress` (`round`, `total_rounds`, `percent`, `metrics` per round) and, last, the final
`status`; then the stream ends. It also ends after the server's `stream_max_s`: reconnect
with the last `id:` as `Last-Event-ID` to resume where it stopped. An id reads `E-R` (or
`Es-R`): the last job event and the last round delivered; a client that already holds the
rounds up to R (from `/history`) may start at `0-R`."""


@router.get(
    "/jobs/{job_id}/stream",
    response_class=StreamingResponse,
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_job(
    job: OwnedJob,
    context: ContextDep,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> StreamingResponse:
    follower = Follower(job.id, Cursor.parse(last_event_id))
    return StreamingResponse(
        _events(context, follower),
        media_type="text/event-stream",
        headers={"Cache-Control": "private, no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/jobs/{job_id}/history", response_model=JobHistory)
def job_history(
    job: OwnedJob,
    session: SessionDep,
    max_points: Annotated[
        int | None, Query(ge=2, le=100_000, description="Downsample to at most this")
    ] = None,
) -> JobHistory:
    """Per-round train and validation metrics; the first and last rounds are always kept."""
    points = rounds(session, job)
    return JobHistory(
        job_id=job.id,
        total_points=len(points),
        metrics=metric_names(points),
        points=downsample(points, max_points),
    )


def _poll(context: Context, follower: Follower) -> list[Message]:
    with context.db.session() as session:
        return follower.poll(session)


async def _events(context: Context, follower: Follower) -> AsyncIterator[str]:
    settings = context.settings
    yield "retry: 1000\n\n"
    started = quiet_since = time.monotonic()
    while True:
        try:
            messages = await run_in_threadpool(_poll, context, follower)
        except ServiceUnavailable:
            log.warning("job %s stream: database unavailable, retrying", follower.job_id)
            messages = []
        for message in messages:
            yield format_message(message)
        now = time.monotonic()
        if follower.finished or now - started > settings.stream_max_s:
            return
        if messages:
            quiet_since = now
        elif now - quiet_since > KEEPALIVE_S:
            quiet_since = now
            yield ": keepalive\n\n"
        await anyio.sleep(settings.stream_poll_s)


def format_message(message: Message) -> str:
    data = json.dumps(message.data, separators=(",", ":"), allow_nan=False, default=str)
    return f"id: {message.id}\nevent: {message.event}\ndata: {data}\n\n"
