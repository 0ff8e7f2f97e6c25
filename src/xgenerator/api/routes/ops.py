"""Operator endpoints: `/status` (the whole service at a glance) and `/metrics` (Prometheus).

Both need an admin key from `XGEN_ADMIN_KEYS`, sent as `X-Admin-Key` or as a Bearer token
(what Prometheus' `authorization` scrape setting sends), unless `XGEN_STATUS_OPEN=true`, for a
service reachable only from a trusted network. User API keys do not open them: they show
every user's job counts. `/health` stays open and dependency-free for liveness probes.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from xgenerator.api.deps import ContextDep
from xgenerator.api.rate_limit import RateLimiter
from xgenerator.api.schemas.ops import StatusPublic
from xgenerator.errors import Forbidden, Unauthorized
from xgenerator.ops import status as system_status

router = APIRouter(tags=["operations"])
ADMIN_FAILURES = "admin_failures"


def require_admin(
    context: ContextDep,
    request: Request,
    x_admin_key: Annotated[str | None, Header(description="One of XGEN_ADMIN_KEYS")] = None,
    authorization: Annotated[str | None, Header(description="Bearer <admin key>")] = None,
) -> None:
    settings = context.settings
    if settings.status_open:
        return
    keys = settings.admin_key_list
    if not keys:
        raise Forbidden(
            "operator endpoints are closed: set XGEN_ADMIN_KEYS, or "
            "XGEN_STATUS_OPEN=true on a trusted network"
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    limit = settings.rate_limit_admin_failures
    limiter.check_failures(request, ADMIN_FAILURES, limit)  # a guesser waits out the window
    given = x_admin_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[len("bearer ") :].strip()
    # Compare against every key, so the time taken does not tell which one nearly matched.
    matched = [hmac.compare_digest((given or "").encode(), key.encode()) for key in keys]
    if not given or not any(matched):
        limiter.record_failure(request, ADMIN_FAILURES, limit)
        raise Unauthorized("an admin key is required (X-Admin-Key or Authorization: Bearer)")


Admin = Depends(require_admin)


@router.get(
    "/status",
    response_model=StatusPublic,
    dependencies=[Admin],
    responses={503: {"model": StatusPublic, "description": "database or broker down"}},
)
def status(context: ContextDep, response: Response) -> StatusPublic:
    """Database, broker, live workers, queue depths, job counts and versions. Answers 503
    (with the same body) when the database or the broker is unreachable."""
    report = system_status.collect(context)
    if report.status != "ok":
        response.status_code = 503
    return StatusPublic.model_validate(report, from_attributes=True)


@router.get(
    "/metrics",
    dependencies=[Admin],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    """Prometheus text format; what each series means is in `xgenerator/ops/prometheus.py`."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
