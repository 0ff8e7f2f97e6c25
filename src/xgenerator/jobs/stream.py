"""Following a job: the messages of its live stream, read from the SQL database.

The database is the source, not process memory, so any API process can serve any stream.
A stream merges two logs whose positions only grow: the job's events (by event id) and its
per-round metrics (by round). A `Cursor` "E-R" names the last event and the last round
delivered; every message carries the cursor after it as its id, so a client that reconnects
with that id (SSE's Last-Event-ID) gets exactly what it missed.

Messages, in order: `event` (one per job event) followed by `status` when that event changed
the status; `progress` (one per round, plus a round-less snapshot such as "loading data"
when that changes); and last the final `status`, after which the stream ends.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from xgenerator.db.tables import Job, JobEvent
from xgenerator.errors import InvalidInput
from xgenerator.jobs import repository, rounds
from xgenerator.jobs.status import FINAL

T = TypeVar("T")
_CURSOR = re.compile(r"^(\d{1,18})(s?)-(\d{1,9})$")


@dataclass(frozen=True)
class Cursor:
    """What a client has received: events up to `event_id` (and, with `status_sent`, the
    `status` message that event caused) and rounds up to `round`. Printed "12-40" or
    "12s-40"."""

    event_id: int = 0
    round: int = 0
    status_sent: bool = False

    def __str__(self) -> str:
        return f"{self.event_id}{'s' if self.status_sent else ''}-{self.round}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor:
        if not value:
            return cls()
        match = _CURSOR.match(value.strip())
        if match is None:
            raise InvalidInput(
                "Last-Event-ID is not an id of this stream", {"last_event_id": value[:100]}
            )
        return cls(int(match[1]), int(match[3]), bool(match[2]))


@dataclass(frozen=True)
class Message:
    event: str
    id: str
    data: dict[str, Any]


@dataclass
class Follower:
    """One stream's state: what it has delivered so far. `poll` is called repeatedly."""

    job_id: str
    cursor: Cursor = field(default_factory=Cursor)
    status: str | None = None
    finished: bool = False
    _snapshot: tuple[Any, Any] | None = None
    _started: bool = False

    def poll(self, session: Session) -> list[Message]:
        """Messages for what happened since the last poll; sets `finished` at the end."""
        # Events first, then the row: the row is then at least as new as the events, so
        # when the final event is seen, the history written with it is seen too.
        events = repository.events(session, self.job_id, after_id=self.cursor.event_id)
        row = session.execute(
            select(Job.progress, Job.error, Job.model_id, Job.config).where(Job.id == self.job_id)
        ).one_or_none()
        if row is None:  # the job record was deleted: nothing more will come
            self.finished = True
            return []
        progress: dict[str, Any] = row.progress or {}
        state = {"progress": progress, "error": row.error, "model_id": row.model_id}
        out: list[Message] = []
        if not self._started:
            self._started = True
            out += self._resume(session, state)
        ends = [e for e in events if e.status in FINAL]
        for event in events:
            if event not in ends:
                out += self._event(event, state)
        last_round = progress.get("round") or 0
        if ends or last_round > self.cursor.round:
            total = progress.get("total_rounds") or row.config.get("num_boost_round")
            out += self._rounds(self._new_rounds(session, row.model_id, bool(ends)), total)
        if progress.get("round") is None and not ends:
            out += self._progress_snapshot(progress)
        for event in ends:
            out += self._event(event, state)
        if self.status in FINAL:
            if not any(m.event == "status" for m in out):
                # reconnected after the end: say the final status again, then stop
                out.append(self._message("status", {"status": self.status, **state}))
            self.finished = True
        return out

    def _new_rounds(
        self, session: Session, model_id: str | None, ended: bool
    ) -> list[dict[str, Any]]:
        """The rounds after the cursor: a range read of the job's round rows, so a poll
        costs what is new, not the whole history. A job that ended with no rows (it kept
        none) may have its model's copy."""
        new = rounds.read(session, self.job_id, after=self.cursor.round)
        if new or not ended or model_id is None or self.cursor.round > 0:
            return new
        return rounds.history(session, self.job_id, model_id)

    def _resume(self, session: Session, state: dict[str, Any]) -> list[Message]:
        """Where a reconnecting client stands: its last status, and a status message that
        its last event caused but that it may not have received."""
        if self.cursor.event_id <= 0:
            return []
        query = (
            select(JobEvent.status)
            .where(JobEvent.job_id == self.job_id, JobEvent.id <= self.cursor.event_id)
            .order_by(JobEvent.id.desc())
            .limit(2)
        )
        latest = list(session.scalars(query))
        if not latest:
            return []
        self.status = latest[0]
        changed = len(latest) == 1 or latest[0] != latest[1]
        if self.cursor.status_sent or not changed:
            return []
        return [self._status(latest[0], state)]

    def _message(self, event: str, data: dict[str, Any]) -> Message:
        return Message(event, str(self.cursor), finite(data))

    def _status(self, status: str, state: dict[str, Any]) -> Message:
        self.status = status
        self.cursor = replace(self.cursor, status_sent=True)
        return self._message("status", {"status": status, **state})

    def _event(self, row: JobEvent, state: dict[str, Any]) -> list[Message]:
        self.cursor = Cursor(row.id, self.cursor.round)
        out = [self._message("event", event_data(row))]
        if row.status != self.status:
            out.append(self._status(row.status, state))
        return out

    def _rounds(self, history: list[dict[str, Any]], total: int | None) -> list[Message]:
        out = []
        for entry in history:
            number = entry.get("round")
            if not isinstance(number, int) or number <= self.cursor.round:
                continue  # already delivered (or rounds replayed after a resume)
            self.cursor = replace(self.cursor, round=number)
            metrics = {k: v for k, v in entry.items() if k != "round"}
            percent = min(100.0, round(number / total * 100, 2)) if total else None
            out.append(
                self._message(
                    "progress",
                    {
                        "round": number,
                        "total_rounds": total,
                        "percent": percent,
                        "metrics": metrics,
                    },
                )
            )
        return out

    def _progress_snapshot(self, progress: dict[str, Any]) -> list[Message]:
        snapshot = (progress.get("percent"), progress.get("message"))
        if snapshot == self._snapshot or not progress:
            return []
        self._snapshot = snapshot
        data = {
            "round": None,
            "total_rounds": progress.get("total_rounds"),
            "percent": progress.get("percent"),
            "message": progress.get("message", ""),
            "metrics": progress.get("metrics") or {},
        }
        return [self._message("progress", data)]


def event_data(row: JobEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "event": row.event,
        "status": row.status,
        "message": row.message,
        "attempt": row.attempt,
    }


def history(session: Session, job: Job) -> list[dict[str, Any]]:
    """Per-round metrics: the job's rows, or its model's copy when the job kept none."""
    return rounds.history(session, job.id, job.model_id)


def metric_names(points: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for point in points:
        names.update((k, None) for k in point if k != "round")
    return list(names)


def downsample(points: list[T], max_points: int | None) -> list[T]:
    """At most `max_points` evenly spaced points; the first and the last are always kept."""
    n = len(points)
    if max_points is None or n <= max_points:
        return list(points)
    if max_points < 2:
        return points[-1:]
    step = (n - 1) / (max_points - 1)
    return [points[int(i * step + 0.5)] for i in range(max_points)]


def finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no spelling for them (JSON.parse rejects NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
