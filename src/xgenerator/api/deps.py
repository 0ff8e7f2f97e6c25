"""Typed dependencies: the shared context, a database session, the authenticated user, and the
user's own job, model or dataset named in the path (another user's is a 404, like a missing one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Dataset, Job, Model, User
from xgenerator.errors import ServiceUnavailable
from xgenerator.jobs import repository as jobs
from xgenerator.models import repository as models
from xgenerator.models import serving
from xgenerator.models.serving import Caller
from xgenerator.users import service as users


def context_of(request: Request) -> Context:
    """The app's context, for the prediction routes, which take no dependency
    (api/routes/predict.py says why)."""
    context: Context = request.app.state.context
    return context


async def get_context(request: Request) -> Context:
    """Async: an attribute read needs no trip through the thread pool (a plain function would
    take one on every request)."""
    return context_of(request)


ContextDep = Annotated[Context, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with context.db.session() as session:
        yield session


# scope="function": commit before the response goes out, so a client never reads stale state.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_current_user(
    context: ContextDep,
    request: Request,
    response: Response,
    x_api_key: Annotated[str | None, Header(description="Your API key")] = None,
) -> User:
    # Its own short transaction: a route's session must not hold the key lookup's locks.
    with context.db.session() as session:
        user = users.authenticate(session, x_api_key)
    # Budgets count per user, not per key: a second key is no second allowance.
    request.app.state.rate_limiter.charge_user(request, response.headers, user.id)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_owned_job(job_id: str, user: CurrentUser, session: SessionDep) -> Job:
    return jobs.get_owned(session, user.id, job_id)


def get_owned_model(model_id: str, user: CurrentUser, session: SessionDep) -> Model:
    return models.get_owned(session, user.id, model_id)


def get_owned_dataset(dataset_id: str, user: CurrentUser, session: SessionDep) -> Dataset:
    return datasets.get_owned(session, user.id, dataset_id)


async def caller_model(request: Request, model_id: str, headers: MutableHeaders) -> Caller:
    """`CurrentUser` then `OwnedModel`, for the prediction routes (which take no dependency:
    api/routes/predict.py), in one query (models/serving.py); same checks, in the same
    order: the key (401), the user's budget (429; its headers go into `headers`), then the
    model (404).

    On an SQLite file, with a budget that costs no Redis round trip, the query runs on the
    event loop (`Database.loop_read`): over HTTP the thread-pool trip cost a one-row
    prediction ~0.3 ms, the read itself takes ~10 µs. Otherwise (PostgreSQL, or budgets in
    Redis), one trip through the pool reads, charges and writes "last used" together."""
    context = context_of(request)
    limiter = request.app.state.rate_limiter
    api_key = request.headers.get("x-api-key")

    def charge(user_id: str) -> None:
        limiter.charge_user(request, headers, user_id)

    if context.db.reads_on_loop and not limiter.counts_in_redis:
        try:
            with context.db.loop_read() as connection:
                caller = serving.find_caller(connection, api_key, model_id, charge)
        except ServiceUnavailable:
            pass  # a lock held past LOOP_READ_BUSY_MS: read through the pool, which waits
        else:
            if caller.stale_key is not None:  # a write, at most once a minute per key
                await run_in_threadpool(_touch_key, context, caller)
            return caller
    return await run_in_threadpool(_find_caller, context, api_key, model_id, charge)


def _find_caller(
    context: Context, api_key: str | None, model_id: str, charge: Callable[[str], None]
) -> Caller:
    with context.db.connection() as connection:
        caller = serving.find_caller(connection, api_key, model_id, charge)
        serving.touch_key(connection, caller)
    return caller


def _touch_key(context: Context, caller: Caller) -> None:
    with context.db.connection() as connection:
        serving.touch_key(connection, caller)


# The OpenAPI entry FastAPI writes for `CurrentUser`'s header, for the prediction routes.
API_KEY_PARAMETER: dict[str, Any] = {
    "name": "x-api-key",
    "in": "header",
    "required": False,
    "schema": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "Your API key",
        "title": "X-Api-Key",
    },
    "description": "Your API key",
}


# The route's own session loaded them, so related reads in the route see the same rows.
OwnedJob = Annotated[Job, Depends(get_owned_job)]
OwnedModel = Annotated[Model, Depends(get_owned_model)]
OwnedDataset = Annotated[Dataset, Depends(get_owned_dataset)]


# The page parameters of every list: at most 100 items a page (OWASP API4), and an offset
# bounded well inside a 64-bit integer (a larger one overflowed SQLite's binding: a 500).
MAX_OFFSET = 1_000_000_000
PageLimit = Annotated[int, Query(ge=1, le=100, description="Items per page, at most 100")]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
