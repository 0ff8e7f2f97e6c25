"""The typed parts of a job's state: its progress and its error.

Both are stored as JSON on the job row (the keys below are the public API's); each is built
here by one function, so that a writer cannot forget or misspell a key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    percent: float = 0.0
    message: str = ""
    round: int | None = None
    total_rounds: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    # The last round saved to the checkpoint (None before the first): a resume starts there.
    checkpoint_round: int | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def progress(
    *,
    percent: float | None = None,
    message: str = "",
    round: int | None = None,
    total_rounds: int | None = None,
    metrics: dict[str, Any] | None = None,
    checkpoint_round: int | None = None,
) -> Progress:
    """Progress as shown to users; without `percent`, it is derived from the rounds."""
    if percent is None and round is not None and total_rounds:
        percent = round / total_rounds * 100
    return Progress(
        percent=float(f"{percent or 0.0:.2f}"),
        message=message,
        round=round,
        total_rounds=total_rounds,
        metrics=dict(metrics or {}),
        checkpoint_round=checkpoint_round,
    )


@dataclass(frozen=True)
class JobError:
    error_type: str
    message: str
    details: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def job_error(error_type: str, message: str, details: dict[str, Any] | None = None) -> JobError:
    """Why a job failed: a stable type name (the domain error's), a message, details."""
    return JobError(error_type=error_type, message=message, details=details)
