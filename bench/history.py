"""Per-round history (issue 15, item 6): what a progress write sends to PostgreSQL, and what a
stream poll costs, at round 100 and at round 5,000 of one job.

A training job writes its progress at most every `progress_interval_s`; here every round is
written (the worst case), through the worker's own `Runtime`. The rounds before the measured
window are stored first in one statement, as a long job would have left them. Bytes are
those of the statements' parameters as the driver sends them (a deterministic count; the
server's WAL is shared with whatever else runs on it). A poll is `Follower.poll`, what each
open `/jobs/{id}/stream` runs every `stream_poll_s`, with one new round since the last one.
Before job_rounds, every write sent the whole history as one JSON value: that size is shown
as the old cost at each round.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from bench.common import Bench, log
from bench.report import Row, Sample, Target, describe_time
from xgenerator.context import Context
from xgenerator.db.tables import Job, User
from xgenerator.jobs import repository, rounds
from xgenerator.jobs.runtime import Runtime
from xgenerator.jobs.stream import Cursor, Follower

NAME = "history"
FLAT = Target("<=", 1.5, "issue")
WINDOW = 40  # rounds written (and polls timed) at each position


def positions(quick: bool) -> tuple[int, int]:
    return (100, 1_000) if quick else (100, 5_000)


def expected(quick: bool) -> list[str]:
    low, high = positions(quick)
    return [
        f"bytes sent per progress write, round {high:,} vs {low:,}",
        f"progress write time, round {high:,} vs {low:,}",
        f"stream poll (one new round), round {high:,} vs {low:,}",
    ]


def _point(r: int) -> dict[str, Any]:
    """A 2-metric history entry, with the training metric every 10 rounds as jobs write it."""
    point: dict[str, Any] = {"round": r, "validation-logloss": 0.7 / (1 + r / 100)}
    if r % 10 == 0:
        point["train-logloss"] = 0.6 / (1 + r / 100)
    return point


@contextmanager
def _bytes_sent(context: Context) -> Iterator[list[int]]:
    sent: list[int] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _x: Any, _many: Any) -> None:
        sent.append(len(statement) + len(repr(params)))

    event.listen(context.db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(context.db.engine, "before_cursor_execute", record)


def _job_at(context: Context, done: int) -> Runtime:
    """A running job whose first `done` rounds are stored; its attempt's runtime."""
    with context.db.session() as session:
        job = Job(user_id=_user(context), job_type="train", queue="train", config={})
        repository.create(session, job)
    with context.db.session() as session:
        attempt = repository.claim(session, job.id, "bench", 600)
        rounds.write(session, job.id, [_point(r) for r in range(1, done + 1)])
    assert attempt is not None  # noqa: S101 - just created
    runtime = Runtime(context, job.id, attempt, "train")
    runtime.resume_history(done, early_stopping=False)
    return runtime


def _user(context: Context) -> str:
    with context.db.session() as session:
        user = session.scalars(select(User).limit(1)).first()
        if user is not None:
            return user.id
        user = User(username="history-bench", email="history-bench@example.com")
        session.add(user)
        session.flush()
        return user.id


def _measure(context: Context, done: int) -> tuple[Sample, Sample, Sample, int]:
    """Per write: bytes and seconds; per poll: seconds. Then the old design's bytes at `done`."""
    runtime = _job_at(context, done)
    # a client that holds the rounds up to `done` (from /history) follows from there: "0-done"
    follower = Follower(runtime.job_id, Cursor(round=done))
    with context.db.session() as session:
        follower.poll(session)
    sizes, writes, polls = [], [], []
    for r in range(done + 1, done + WINDOW + 1):
        with _bytes_sent(context) as sent:
            started = time.perf_counter()
            runtime.progress(round=r, total=done + WINDOW, metrics=_point(r), force=True)
            writes.append(time.perf_counter() - started)
        sizes.append(float(sum(sent)))
        with context.db.session() as session:
            started = time.perf_counter()
            got = follower.poll(session)
            polls.append(time.perf_counter() - started)
        assert [m.data["round"] for m in got if m.event == "progress"] == [r]  # noqa: S101
    old = len(json.dumps([_point(i) for i in range(1, done + 1)]))
    return Sample.of(sizes), Sample.of(writes), Sample.of(polls), old


def run(bench: Bench) -> list[Row]:
    low, high = positions(bench.config.quick)
    context = bench.stack("postgresql").context
    measured = {n: _measure(context, n) for n in (low, high)}
    (b_low, w_low, p_low, old_low), (b_high, w_high, p_high, old_high) = (
        measured[low],
        measured[high],
    )
    log(
        f"history: bytes/write {b_low.p50:,.0f} at {low}, {b_high.p50:,.0f} at {high}; "
        f"poll p50 {p_low.p50 * 1e3:.2f} ms vs {p_high.p50 * 1e3:.2f} ms"
    )
    at = f"round {high:,} vs {low:,}"
    return [
        Row(
            NAME,
            f"bytes sent per progress write, {at}",
            f"{b_high.p50:,.0f} B",
            f"{b_low.p50:,.0f} B",
            b_high.p50 / b_low.p50,
            FLAT,
            f"whole-history rewrite (before): {old_high:,} B vs {old_low:,} B per write",
        ),
        Row(
            NAME,
            f"progress write time, {at}",
            describe_time(w_high),
            describe_time(w_low),
            w_high.p50 / w_low.p50,
            FLAT,
            "renew + new round row, one transaction, PostgreSQL",
        ),
        Row(
            NAME,
            f"stream poll (one new round), {at}",
            describe_time(p_high),
            describe_time(p_low),
            p_high.p50 / p_low.p50,
            FLAT,
            "Follower.poll: events after the cursor, the job row, rounds after the cursor",
        ),
    ]
