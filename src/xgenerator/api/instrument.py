"""Times every HTTP request into the per-process request metrics (metrics.RequestMetrics)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xgenerator.ops.prometheus import RequestMetrics


class RequestTiming:
    """Counts and times requests by method, route template and status code.

    The route template (``/jobs/{job_id}``) is read after routing, from the scope the router
    filled in; a path no route matched is labelled ``unmatched``, so that scanners probing
    random URLs cannot create new series.
    """

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering, the server answers 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
