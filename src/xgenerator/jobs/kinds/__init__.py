"""The job kinds: what each does before a job exists (`prepare`) and on a worker (`run`).

Adding a kind is one module in this package with a `JobKind`, registered by `register`, and
one line in `load_all`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.jobs.runtime import Runtime
from xgenerator.settings import Settings


@dataclass(frozen=True)
class Artifact:
    """A file already written to the artifact store, to be listed under the job's result."""

    name: str
    content_type: str
    key: str
    size: int


@dataclass
class Outcome:
    """What a job produced. `commit` adds its rows inside the transaction that marks the job
    succeeded, so results and status land together or not at all. `artifacts` are recorded
    in that transaction too; they and `artifact_keys` are deleted if it does not happen
    (a stale attempt, a cancel that won). `then` runs only once the success is in."""

    result: dict[str, Any]
    model_id: str | None = None
    commit: Callable[[Session], None] | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    artifact_keys: list[str] = field(default_factory=list)
    # Work after the success is committed (the SHAP summary): in the job's process, with the
    # job already final, so it can neither delay nor change the outcome. It handles its own
    # errors.
    then: Callable[[], None] | None = None

    def written_keys(self) -> list[str]:
        return [*self.artifact_keys, *(a.key for a in self.artifacts)]


class JobKind(Protocol):
    job_type: str

    def prepare(
        self, session: Session, settings: Settings, user_id: str, request: dict[str, Any]
    ) -> Job:
        """Check everything checkable before the job exists (ownership of every id the request
        names included) and build its row; a bad request raises here, never on a worker."""
        ...

    def run(self, context: Context, job: Job, runtime: Runtime) -> Outcome: ...


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _KINDS[kind.job_type] = kind
    return kind


def get(job_type: str) -> JobKind:
    if job_type not in _KINDS:
        # not `if not _KINDS`: importing one kind's module (the worker imports cleanup)
        # must not stop the others from loading
        load_all()
    return _KINDS[job_type]


def load_all() -> None:
    """Import the modules that define kinds (each registers itself)."""
    from xgenerator.jobs.kinds import (  # noqa: F401
        cleanup,
        cv,
        noop,
        predict_batch,
        process,
        report,
        train,
        tune,
    )
