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
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from xgenerator.api.deps import ContextDep, OwnedJob, SessionDep
from xgenerator.api.schemas.stream import JobHistory
from xgenerator.context import Context
from xgenerator.errors import ServiceUnavailable, Unauthorized
from xgenerator.jobs.stream import Cursor, Follower, Message, downsample, history, metric_names
from xgenerator.users import service as users

log = logging.getLogger(__name__)
router = APIRouter(tags=["jobs"])

# A comment line now and then keeps proxies and load balancers from closing a quiet stream.
KEEPALIVE_S = 15.0
# How long a browser's EventSource waits before it reconnects (with Last-Event-ID).
RETRY_MS = 1000
# How often an open stream checks that its API key has not been revoked meanwhile.
KEY_RECHECK_S = 5.0
# Lines end in LF, not sse-starlette's default CRLF: the dashboard's reader (ui/static/api.js)
# splits messages on blank lines "\n\n".
SEP = "\n"

STREAM_DOC = """Server-Sent Events: `event` (a job event), `status` (after each change),
`progress` (`round`, `total_rounds`, `percent`, `metrics` per round) and, last, the final
`status`; then the stream ends. It also ends after the server's `stream_max_s`: reconnect
with the last `id:` as `Last-Event-ID` to resume where it stopped. An id reads `E-R` (or
`Es-R`): the last job event and the last round delivered; a client that already holds the
rounds up to R (from `/history`) may start at `0-R`."""


@router.get(
    "/jobs/{job_id}/stream",
    response_class=EventSourceResponse,
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_job(
    job: OwnedJob,
    context: ContextDep,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> EventSourceResponse:
    follower = Follower(job.id, Cursor.parse(last_event_id))
    # sse-starlette adds X-Accel-Buffering: no (nginx must not hold the stream back), sends
    # the keep-alive comments, and ends the stream when the server shuts down.
    return EventSourceResponse(
        _events(context, follower, x_api_key),
        headers={"Cache-Control": "private, no-cache"},
        ping=KEEPALIVE_S,
        sep=SEP,
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
    points = history(session, job)
    return JobHistory(
        job_id=job.id,
        total_points=len(points),
        metrics=metric_names(points),
        points=downsample(points, max_points),
    )


def _poll(context: Context, follower: Follower) -> list[Message]:
    with context.db.session() as session:
        return follower.poll(session)


def _key_still_valid(context: Context, key: str | None) -> bool:
    try:
        with context.db.session() as session:
            users.authenticate(session, key)
    except Unauthorized:
        return False
    except ServiceUnavailable:
        return True  # a database blip is not a revocation
    return True


async def _events(
    context: Context, follower: Follower, key: str | None
) -> AsyncIterator[ServerSentEvent]:
    settings = context.settings
    yield ServerSentEvent(retry=RETRY_MS, sep=SEP)
    started = checked = time.monotonic()
    while True:
        if time.monotonic() - checked > KEY_RECHECK_S:
            # A key revoked while its stream is open stops being served within this interval.
            if not await run_in_threadpool(_key_still_valid, context, key):
                return
            checked = time.monotonic()
        try:
            messages = await run_in_threadpool(_poll, context, follower)
        except ServiceUnavailable:
            log.warning("job %s stream: database unavailable, retrying", follower.job_id)
            messages = []
        for message in messages:
            yield event(message)
        if follower.finished or time.monotonic() - started > settings.stream_max_s:
            return
        await anyio.sleep(settings.stream_poll_s)


def event(message: Message) -> ServerSentEvent:
    data = json.dumps(message.data, separators=(",", ":"), allow_nan=False, default=str)
    return ServerSentEvent(data, id=message.id, event=message.event, sep=SEP)
