"""The one table from errors to HTTP responses, all in the shape {error, message, details}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from xgenerator.api.headers import DEFAULT_HEADERS
from xgenerator.errors import (
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    TrainingFailed,
    Unauthorized,
    XGeneratorError,
)

log = logging.getLogger(__name__)

STATUS_CODES: dict[type[XGeneratorError], int] = {
    NotFound: 404,
    Unauthorized: 401,
    Forbidden: 403,
    Conflict: 409,
    InvalidInput: 422,
    PayloadTooLarge: 413,
    RateLimited: 429,
    ServiceUnavailable: 503,
    # Data that cannot be trained on, found by a synchronous check rather than a worker.
    TrainingFailed: 422,
    # The server's own settings are wrong: not the client's fault, and not a crash either.
    ConfigurationError: 503,
}


def error_body(error: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": error, "message": message, "details": details}


class ErrorBody(BaseModel):
    """The one error shape, declared in the OpenAPI spec so that clients (and the schemathesis
    fuzz test) can hold every error answer to it: exactly these three fields."""

    model_config = ConfigDict(extra="forbid")

    error: str
    message: str
    details: dict[str, Any] | None


# Every route answers its errors in the shape above; declared once, for the whole app (this
# also replaces FastAPI's default 422 schema, `{detail: [...]}`, which this app never sends).
OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Client error, in the one error shape"},
    "5XX": {"model": ErrorBody, "description": "Server error, in the one error shape"},
}


def status_for(exc: XGeneratorError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, XGeneratorError)  # noqa: S101 - registered for this type only
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "ApiKey"
    body = error_body(exc.code, exc.message, exc.details)
    return JSONResponse(body, status_code=status_for(exc), headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    problems = [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    fields = ", ".join(p["field"] for p in problems)
    body = error_body("validation_error", f"invalid request: {fields}", {"errors": problems})
    return JSONResponse(body, status_code=422)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    401: "unauthorized",
    400: "bad_request",
}


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    # Starlette answers this one from its outermost middleware, outside SecurityHeaders.
    return JSONResponse(
        error_body("internal_error", "internal server error"),
        status_code=500,
        headers=DEFAULT_HEADERS,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(XGeneratorError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
