"""Files that no row refers to: swept by the cleanup job after a grace period.

A worker writes a model or an artifact file before the transaction that records it; if it
dies in between (or the transaction never commits), the file is referenced by nothing.
Checkpoints belong to running or queued jobs; once the job is final (or gone) its
checkpoint is useless. The grace period covers files whose transaction is still under way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from xgenerator.context import Context
from xgenerator.db.tables import Dataset, Job, JobArtifact, Model
from xgenerator.jobs.status import ACTIVE

# A file younger than this may belong to a transaction still under way (a success waits out
# a database outage for up to two minutes): never swept.
GRACE = timedelta(days=1)
# Folders of files that rows refer to by `storage_key` (see ArtifactStore.new_key).
FOLDERS = ("models", "artifacts", "datasets")
CHECKPOINTS = "checkpoints"
CHUNK = 500


@dataclass
class Swept:
    files: int = 0
    checkpoints: int = 0


def sweep(context: Context, now: datetime) -> Swept:
    swept = Swept()
    store = context.store
    for folder in FOLDERS:
        old = [key for key, modified in store.listing(folder) if modified < now - GRACE]
        for start in range(0, len(old), CHUNK):
            chunk = old[start : start + CHUNK]
            for key in set(chunk) - _referenced(context, chunk):
                store.delete(key)
                swept.files += 1
    checkpoints = {
        key.removeprefix(f"{CHECKPOINTS}/").removesuffix(".ubj"): key
        for key, _ in store.listing(CHECKPOINTS)
        if key.endswith(".ubj")
    }
    jobs = list(checkpoints)
    for start in range(0, len(jobs), CHUNK):
        chunk = jobs[start : start + CHUNK]
        for job_id in set(chunk) - _active(context, chunk):
            store.delete(checkpoints[job_id])
            swept.checkpoints += 1
    return swept


def _referenced(context: Context, keys: list[str]) -> set[str]:
    with context.db.session() as session:
        found: set[str] = set()
        for column in (Model.storage_key, JobArtifact.storage_key, Dataset.storage_key):
            found.update(session.scalars(select(column).where(column.in_(keys))))
        return found


def _active(context: Context, job_ids: list[str]) -> set[str]:
    with context.db.session() as session:
        query = select(Job.id).where(Job.id.in_(job_ids), Job.status.in_(list(ACTIVE)))
        return set(session.scalars(query))
