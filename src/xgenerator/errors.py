"""The domain's errors. Raised anywhere below the API; mapped to HTTP in `api/errors.py` only."""

from __future__ import annotations

from typing import Any


class XGeneratorError(Exception):
    """Root of every error the service raises on purpose."""

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigurationError(XGeneratorError):
    """A setting is missing or invalid; raised at start-up."""

    code = "configuration_error"


class NotFound(XGeneratorError):
    """The object does not exist, or belongs to someone else (the two look the same)."""

    code = "not_found"

    def __init__(self, kind: str, object_id: str, why: str | None = None) -> None:
        message = f"{kind} {object_id!r} not found" + (f": {why}" if why else "")
        super().__init__(message, {"id": object_id})
        self.code = f"{kind}_not_found"


class Unauthorized(XGeneratorError):
    """No API key, or one that matches no active key."""

    code = "unauthorized"


class Forbidden(XGeneratorError):
    """The key is valid but the request names another user."""

    code = "forbidden"


class Conflict(XGeneratorError):
    """The request contradicts the current state (duplicate name, job already finished, ...)."""

    code = "conflict"


class InvalidInput(XGeneratorError):
    """The request is well-formed but its content is unusable."""

    code = "invalid_input"


class InvalidDataset(InvalidInput):
    """An uploaded file is not a usable table."""

    code = "invalid_dataset"


class TooLargeForMemory(InvalidInput):
    """A job's data would not fit the memory a worker allows (`XGEN_WORKER_MEMORY_MB`):
    refused before anything is loaded, never left to the kernel's OOM killer."""

    code = "too_large_for_memory"


class PayloadTooLarge(XGeneratorError):
    """A body or file exceeds a configured limit."""

    code = "payload_too_large"


class RateLimited(XGeneratorError):
    """Too many requests or active jobs; `retry_after` is in seconds."""

    code = "rate_limited"

    def __init__(
        self, message: str, retry_after: int = 1, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


class QuotaExceeded(RateLimited):
    """The user already has as many active jobs as the quota allows."""

    code = "quota_exceeded"


class ServiceUnavailable(XGeneratorError):
    """A dependency (database, broker, storage) cannot be reached right now."""

    code = "service_unavailable"


class TrainingFailed(XGeneratorError):
    """Training could not produce a model from this data; retrying would fail the same way.

    `error_type` names the cause for the job's error object (e.g. ``SingleClass``).
    """

    code = "training_failed"

    def __init__(
        self, error_type: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details)
        self.error_type = error_type
