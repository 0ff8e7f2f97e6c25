"""The client's errors: API error bodies {error, message, details} become typed exceptions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from xgenerator.client.types import JobInfo


class ClientError(Exception):
    """Root of every error the client raises."""


class ConnectionFailed(ClientError):
    """The server could not be reached (or stopped answering)."""


class StreamUnavailable(ConnectionFailed):
    """A job's event stream cannot be followed (refused, or a proxy answered something other
    than server-sent events); `Job.wait` polls the job instead."""


class ApiError(ClientError):
    """The API answered with an error; `code` is its machine-readable `error` field."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class BadRequest(ApiError):
    """400: the request could not be read."""


class AuthenticationError(ApiError):
    """401: no API key, or one the server does not know."""


class PermissionDenied(ApiError):
    """403: the key is valid but may not do this."""


class NotFoundError(ApiError):
    """404: no such object, or it belongs to someone else."""


class ConflictError(ApiError):
    """409: the object's state forbids this (e.g. cancelling a finished job)."""


class PayloadTooLarge(ApiError):
    """413: a file or body over the server's limit."""


class ValidationError(ApiError):
    """422: the request was understood but its content is unusable."""


class RateLimited(ApiError):
    """429: too many requests or active jobs; retry after `retry_after` seconds."""

    retry_after: float = 1.0


class ServiceUnavailable(ApiError):
    """503: a dependency of the server (database, broker, storage) is down."""


class JobError(ClientError):
    """A job ended without succeeding; `job` is its final state."""

    def __init__(self, message: str, job: JobInfo) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(JobError):
    """The job failed; `error_type` and `error_message` say why."""

    @property
    def error_type(self) -> str:
        return self.job.error.error_type if self.job.error else "unknown"

    @property
    def error_message(self) -> str:
        return self.job.error.message if self.job.error else ""


class JobCancelled(JobError):
    """The job was cancelled."""


class WaitTimeout(ClientError, TimeoutError):
    """`Job.wait` ran out of time; the job goes on running."""


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: ServiceUnavailable,
}


def from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response, from its JSON body when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        code, message, details = (
            str(body["error"]),
            str(body.get("message", "")),
            body.get("details"),
        )
    else:
        code, message, details = "http_error", response.text[:300] or response.reason_phrase, None
    error = BY_STATUS.get(response.status_code, ApiError)(
        response.status_code, code, message, details
    )
    if isinstance(error, RateLimited):
        try:
            error.retry_after = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            error.retry_after = 1.0
    return error
