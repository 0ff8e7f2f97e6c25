"""Headers on every response, and CORS only where an operator configured origins.

The dashboard sets its own, stricter headers (`ui/routes.py`); these are the floor for every
other answer, JSON included: a browser must never sniff a JSON error into HTML, nor frame it.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Every answer is one user's data: no shared cache (a proxy, a CDN) may keep it. Answers
    # that may be cached privately (downloads) or must not be transformed (streams) say so.
    "Cache-Control": "private, no-store",
}
# What a browser may send cross-origin: the API key, and what the API reads besides.
CORS_HEADERS = ["X-API-Key", "Content-Type", "Idempotency-Key", "Last-Event-ID"]


class SecurityHeaders:
    """Adds each of `headers` to a response that does not already set it."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] = DEFAULT_HEADERS) -> None:
        self.app = app
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, cors_origins: list[str]) -> None:
    """No origins (the default): no CORS middleware, so browsers keep the same-origin rule.
    Keys travel in a header, never a cookie, so credentials mode stays off."""
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=CORS_HEADERS,
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
