"""What a running job can do: report progress, keep its lease, notice cancellation and time
limits, save checkpoints. One `Runtime` per attempt; every write is fenced by that attempt."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from xgenerator.context import Context
from xgenerator.errors import ServiceUnavailable
from xgenerator.jobs import finished, repository, rounds, state
from xgenerator.jobs.status import JobStatus

log = logging.getLogger(__name__)


class JobInterrupted(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a running job to stop it; the runner decides the final status."""


class JobCancelled(JobInterrupted):
    """The owner asked to cancel."""


class LeaseLost(JobInterrupted):
    """Another attempt owns the job now; this one must stop without writing anything."""


class TimeLimitExceeded(JobInterrupted):
    """The job ran past the soft time limit."""


class TrialPruned(JobInterrupted):
    """A search's pruner stopped this trial: it ends `cancelled`, its result says pruned."""

    def __init__(self, round_: int, reason: str) -> None:
        super().__init__(reason)
        self.round = round_
        self.reason = reason


class JobEnded(JobInterrupted):
    """The lease thread already ended the job (cancelled, or failed past its time limit) and
    recorded it, or is stopping its process: the job's code must stop without writing
    anything."""


def checkpoint_key(job_id: str) -> str:
    """Where a job's checkpoint lives: one per job, overwritten by each attempt."""
    return f"checkpoints/{job_id}.ubj"


@dataclass
class Runtime:
    context: Context
    job_id: str
    attempt: int
    job_type: str = "job"
    started: float = field(default_factory=time.monotonic)
    _last_write: float = 0.0
    _history: list[dict[str, Any]] = field(default_factory=list)
    _stored: int = 0  # how many entries of `_history` are in the database
    _pending: state.Progress = field(default_factory=state.Progress)
    _checkpoint_round: int | None = None
    _lost: threading.Event = field(default_factory=threading.Event)
    _ended: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _halt: Callable[[], None] | None = None

    @contextmanager
    def keeping_lease(self, halt: Callable[[], None] | None = None) -> Iterator[None]:
        """Renew the lease from a thread while the job runs, so phases without progress
        (loading data, building matrices, writing results) cannot let it lapse.

        `halt` stops the job's code at once (`jobs/isolation.py`: its process); that thread
        calls it when it ends the job or finds the lease lost, before it deletes the
        checkpoint. Without it, the code stops at its next check."""
        self._halt = halt
        keeper = threading.Thread(target=self._keep_lease, name=f"lease-{self.job_id}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            self._stop.set()
            keeper.join()

    def _keep_lease(self) -> None:
        """Renew the lease, and end the job from here when its code cannot notice (stuck
        loading data, or inside one long boosting round): a cancel, or the time limit."""
        settings = self.context.settings
        while not self._stop.wait(settings.lease_s / 3):
            if self._past_time_limit():
                limit = settings.soft_time_limit_s
                error = state.job_error("TimeLimitExceeded", f"the job ran longer than {limit:g} s")
                self._end(
                    JobStatus.FAILED,
                    "failed",
                    f"TimeLimitExceeded: {error.message}",
                    error=error.as_json(),
                )
            else:
                try:
                    with self.context.db.session() as session:
                        cancelled = repository.renew(
                            session, self.job_id, self.attempt, settings.lease_s
                        )
                except ServiceUnavailable:
                    continue  # a short outage: the lease outlives it, try again next tick
                if cancelled is None:
                    self._lost.set()  # seen by the job at its next progress report
                    self._halt_work()
                    return
                if cancelled:
                    self._end(JobStatus.CANCELLED, "cancelled", "cancelled while running")
            if self._ended.is_set():
                return

    def _end(self, status: JobStatus, event: str, message: str, **fields: Any) -> None:
        """Record the job's end now, fenced by this attempt, then halt the job's process (if
        it has one of its own); otherwise its code stops at its next progress report
        (`JobEnded`). Whatever it writes after this is fenced out."""
        try:
            with self.context.db.session() as session:
                changed = repository.transition(
                    session,
                    self.job_id,
                    status,
                    event=event,
                    message=message,
                    attempt=self.attempt,
                    **fields,
                )
        except ServiceUnavailable:
            return  # tried again at the next tick
        if not changed:
            self._lost.set()
            self._halt_work()
            return
        self._ended.set()
        self._halt_work()  # before the checkpoint goes: a live process could write it again
        finished.record(self.context, self.job_type, status, time.monotonic() - self.started)
        try:
            self.drop_checkpoint()
        except Exception:
            log.exception("job %s: could not delete its checkpoint", self.job_id)

    def _halt_work(self) -> None:
        if self._halt is None:
            return
        try:
            self._halt()
        except Exception:
            log.exception("job %s: could not stop its process", self.job_id)

    def _past_time_limit(self) -> bool:
        return time.monotonic() - self.started > self.context.settings.soft_time_limit_s

    @property
    def ended(self) -> bool:
        """The lease thread ended the job (cancel, time limit)."""
        return self._ended.is_set()

    def end_at_next_check(self) -> None:
        """The worker is stopping this job's process (`jobs/isolation.py`, a job whose work
        runs elsewhere): the code raises `JobEnded` at its next check and writes nothing
        more. Safe in a signal handler: nothing else sets or waits on this flag there."""
        self._ended.set()

    @property
    def lost(self) -> bool:
        """Another attempt owns the job now."""
        return self._lost.is_set()

    def check(self) -> None:
        """Between phases, without a database round trip: stop if the lease thread ended the
        job or lost its lease, or if the job is out of time."""
        if self._ended.is_set():
            raise JobEnded(self.job_id)
        if self._lost.is_set():
            raise LeaseLost(self.job_id)
        self.check_time_limit()

    @property
    def checkpoint_key(self) -> str:
        return checkpoint_key(self.job_id)

    def event(self, event: str, message: str, status: JobStatus = JobStatus.RUNNING) -> None:
        with self.context.db.session() as session:
            repository.add_event(session, self.job_id, event, status, message, self.attempt)

    def progress(
        self,
        *,
        round: int | None = None,
        total: int | None = None,
        metrics: dict[str, Any] | None = None,
        message: str = "",
        percent: float | None = None,
        force: bool = False,
    ) -> None:
        """Record progress; at most one database write per `progress_interval_s`.

        Each write also extends the lease and reads the cancel flag, so a cancel is
        noticed within one round, or within the interval when rounds are faster.
        """
        self.check()
        if round is not None:
            self._history.append({"round": round, **(metrics or {})})
        self._pending = state.progress(
            percent=percent,
            round=round,
            total_rounds=total,
            message=message,
            metrics=metrics,
            checkpoint_round=self._checkpoint_round,
        )
        now = time.monotonic()
        interval = self.context.settings.progress_interval_s
        if not force and now - self._last_write < interval:
            return
        self._last_write = now
        self.flush()

    def flush(self) -> bool:
        """Write pending progress and the rounds since the last write, extend the lease, and
        honour a cancel. Returns whether it was written (False: the database was away).

        Only the new rounds are written (appended rows), in the transaction that renews the
        lease: an attempt that lost the job writes none."""
        settings = self.context.settings
        new = self._history[self._stored :]
        try:
            with self.context.db.session() as session:
                cancelled = repository.renew(
                    session,
                    self.job_id,
                    self.attempt,
                    settings.lease_s,
                    progress=self._pending.as_json(),
                )
                if cancelled is not None:
                    rounds.write(session, self.job_id, new)
        except ServiceUnavailable:
            # The database is briefly away: keep training; the lease covers short outages.
            log.warning("job %s: progress not written, database unavailable", self.job_id)
            return False
        if cancelled is None:
            raise JobEnded(self.job_id) if self._ended.is_set() else LeaseLost(self.job_id)
        self._stored += len(new)
        if cancelled:
            raise JobCancelled(self.job_id)
        return True

    def check_time_limit(self) -> None:
        limit = self.context.settings.soft_time_limit_s
        if self._past_time_limit():
            raise TimeLimitExceeded(f"the job ran longer than {limit:g} s")

    @property
    def history(self) -> list[dict[str, Any]]:
        return self._history

    def unstored_rounds(self) -> list[dict[str, Any]]:
        """The rounds not yet in the database: the job's last write adds them."""
        return self._history[self._stored :]

    def rounds_stored(self) -> None:
        """The last write (the job's end) stored `unstored_rounds`."""
        self._stored = len(self._history)

    def resume_history(
        self, done: int, early_stopping: bool, inexact: str | None = None
    ) -> list[dict[str, Any]]:
        """Carry the rounds an earlier attempt stored up to its checkpoint at round `done`
        (the rows it wrote after it are replaced as this attempt replays those rounds), and
        say so in a `resumed` event (with `inexact`: why the model will not be the one an
        uninterrupted run makes). Returns them: early stopping resumes from them.

        Rows are stored before each checkpoint, so all `done` are there; a job checkpointed
        by an older version may miss some, and then early stopping restarts at the
        checkpoint, which the event says."""
        with self.context.db.session() as session:
            earlier = rounds.read(session, self.job_id, upto=done)
        self._history = earlier
        self._stored = len(earlier)
        message = f"resumed from the checkpoint at round {done}"
        if early_stopping and len(earlier) != done:
            message += (
                f"; early stopping restarts there ({len(earlier)} of its {done} rounds are stored)"
            )
        if inexact:
            message += f"; not the same model as an uninterrupted run: {inexact}"
        self.event("resumed", message)
        return list(earlier)

    def replace_history(self, entries: list[dict[str, Any]]) -> None:
        """The job's history is `entries` (cross-validation cuts it at the best round): the
        next write stores them all, in place of what was stored."""
        self._history = list(entries)
        self._stored = 0

    def save_checkpoint(self, data: bytes, round: int) -> None:
        """The rounds up to `round` are written first, so a resumed attempt finds the history
        (and the early-stopping state it holds) up to its checkpoint. If they cannot be
        written, the checkpoint is skipped: the previous one stays consistent."""
        if not self.flush():
            log.warning("job %s: checkpoint at round %s skipped", self.job_id, round)
            return
        self._last_write = time.monotonic()
        self.context.store.put_bytes(self.checkpoint_key, data)
        self._checkpoint_round = round

    def load_checkpoint(self) -> bytes | None:
        store = self.context.store
        return store.get_bytes(self.checkpoint_key) if store.exists(self.checkpoint_key) else None

    def drop_checkpoint(self) -> None:
        self.context.store.delete(self.checkpoint_key)
