"""Request body size limits, enforced before the body is read."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xgenerator.api.errors import error_body


class BodySizeLimit:
    """Answers 413 from Content-Length alone, and stops a chunked body once it passes the limit.

    `limit_for(method, path)` gives the byte limit of a route: uploads get the dataset limit,
    everything else the JSON body limit.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        overflow = False

        async def counting_receive() -> Message:
            # Past the limit the body is cut short; whatever the app then answers (a parse
            # error, typically) is replaced by the 413 in `guarded_send`.
            nonlocal received, overflow
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            if not overflow:
                await send(message)
            elif message["type"] == "http.response.start":
                await _too_large(limit)(scope, receive, send)

        await self.app(scope, counting_receive, guarded_send)


def _too_large(limit: int) -> JSONResponse:
    body = error_body(
        "payload_too_large", f"request body exceeds {limit} bytes", {"limit_bytes": limit}
    )
    return JSONResponse(body, status_code=413, headers={"Connection": "close"})
