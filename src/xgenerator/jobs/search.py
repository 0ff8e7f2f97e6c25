"""Scheduling a hyper-parameter search: its trials' ends start the next ones and finish it.

`schedule` is the one step, idempotent and safe to run anywhere at any time: it locks the
search's row (an UPDATE first: PostgreSQL's row lock, SQLite's write lock), reads its trials,
creates trials until `max_parallel` are active or `max_trials` exist (trial numbers are the
count of trials so far, so none is created twice), and, once no trial is active and no more
will be created, ends the search with the best trial's model as its result. It runs at
submission, after every trial's final transition (the runner, the reconciler, a cancel), and
from the reconciler's sweep, which covers a process that died between the two.

A trial is pruned when the median pruner, rebuilt from the trials' histories, finds its
validation metric worse than the median of finished trials at the same round: it stops with
`TrialPruned` and ends `cancelled`, with a `pruned` event and `result.pruned = true`.

With `cv_folds`, trials are `cv` jobs (see `jobs/kinds/tune.py`): their history holds each
metric's fold mean and standard deviation per round, and the search reads the mean
(`validation-logloss` is read as `validation-logloss-mean`), for pruning as for scoring. A
cross-validated trial's score is the mean at the round its refit model was trained for.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xgenerator.context import Context
from xgenerator.db.tables import Job, utcnow
from xgenerator.jobs import (
    finished,
    kinds,
    publish,
    quota,
    repository,
    rounds,
    sampling,
    service,
    state,
)
from xgenerator.jobs.kinds.train_request import queue_for
from xgenerator.jobs.runtime import TrialPruned
from xgenerator.jobs.status import ACTIVE, JobStatus
from xgenerator.ml import params as xgb_params

log = logging.getLogger(__name__)


def submit(
    context: Context, user_id: str, request: dict[str, Any], idempotency_key: str | None = None
) -> service.Submission:
    """Record the search (`running` at once: it holds no worker) and start its first trials;
    `created` False: the Idempotency-Key's first search, replayed. Its `max_parallel` trials
    count against the user's active-job quota; the search does not."""
    digest = service.request_hash(request) if idempotency_key else None
    if idempotency_key:
        existing = service.replay(context, user_id, idempotency_key, digest)
        if existing is not None:
            return service.Submission(existing, created=False)
    try:
        job = _record_search(context, user_id, request, idempotency_key, digest)
    except IntegrityError:
        existing = service.replay(context, user_id, idempotency_key or "", digest)
        if existing is None:
            raise
        return service.Submission(existing, created=False)
    context.metrics.submitted(job.job_type)
    schedule(context, job.id)
    with context.db.session() as session:
        job = repository.get_owned(session, user_id, job.id)
        started = len(trials(session, job.id))  # some may be running already
    cfg = job.config["search"]
    kind = "cv" if cfg.get("cv_folds") else "train"
    message = (
        f"search running: {started} of up to {cfg['max_trials']} trials submitted as {kind} jobs "
        f"({cfg['max_parallel']} at a time); follow GET /jobs/{job.id}/trials"
    )
    return service.Submission(job, created=True, message=message)


def _record_search(
    context: Context,
    user_id: str,
    request: dict[str, Any],
    idempotency_key: str | None,
    digest: str | None,
) -> Job:
    with context.db.session() as session:
        job = kinds.get("tune").prepare(session, context.settings, user_id, request)
        job.idempotency_key, job.request_hash = idempotency_key, digest
        repository.create(session, job)
        limit = context.settings.max_active_jobs_per_user
        if limit > 0:
            quota.check_active_jobs(
                session, user_id, limit - job.config["search"]["max_parallel"] + 1
            )
        repository.transition(
            session,
            job.id,
            JobStatus.RUNNING,
            event="started",
            message="search started; its trials run as train jobs",
            started_at=utcnow(),
        )
        for note in job.config["search"]["notes"]:
            repository.add_event(session, job.id, "search_adjusted", JobStatus.RUNNING, note)
    return job


def on_trial_finished(context: Context, parent_job_id: str | None) -> None:
    """After a trial's final transition: schedule its search. Never raises (the reconciler's
    sweep schedules a search a failure here left waiting)."""
    if parent_job_id is None:
        return
    try:
        schedule(context, parent_job_id)
    except Exception:
        log.exception("search %s: scheduling failed; the reconciler will retry", parent_job_id)


def sweep(context: Context) -> int:
    """Schedule every running search (the reconciler's safety net); returns how many."""
    with context.db.session() as session:
        ids = list(
            session.scalars(
                select(Job.id).where(Job.job_type == "tune", Job.status == JobStatus.RUNNING)
            )
        )
    for search_id in ids:
        on_trial_finished(context, search_id)
    return len(ids)


def trials(session: Session, search_id: str) -> list[Job]:
    query = select(Job).where(Job.parent_job_id == search_id)
    return sorted(session.scalars(query), key=lambda j: int(j.config["trial"]["number"]))


def schedule(context: Context, search_id: str) -> None:
    created: list[Job] = []
    ended: JobStatus | None = None
    with context.db.session() as session:
        locked = session.execute(
            update(Job)
            .where(Job.id == search_id, Job.status == JobStatus.RUNNING)
            .values(updated_at=utcnow())
        )
        if getattr(locked, "rowcount", 0) != 1:
            return  # finished, cancelled or gone
        search = session.get(Job, search_id, populate_existing=True)
        assert search is not None  # noqa: S101 - just locked
        children = trials(session, search_id)
        cfg = search.config["search"]
        active = sum(1 for c in children if c.status in ACTIVE)
        timed_out = _timed_out(search, cfg)
        if not search.cancel_requested and not timed_out and len(children) < cfg["max_trials"]:
            room = min(cfg["max_parallel"] - active, cfg["max_trials"] - len(children))
            for _ in range(max(room, 0)):
                child = _new_trial(context, session, search, [*children, *created])
                created.append(child)
        if active == 0 and not created:
            ended = _finish(session, search, children, timed_out)
        else:
            search.progress = _progress(session, search, [*children, *created]).as_json()
    if ended is not None:
        finished.record(context, "tune", ended)
    for child in created:
        if not publish.publish(context, child, child.celery_task_id or ""):
            publish.forget_task_id(context, child)


def _progress(session: Session, search: Job, children: list[Job]) -> state.Progress:
    """The search's progress: trials ended out of max_trials, counts by state, best so far."""
    board = leaderboard(session, search, children)
    counts, best = board["counts"], board["best"]
    ended = sum(v for k, v in counts.items() if k not in ("queued", "running"))
    shown = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    best_text = f"; best {board['metric']} = {best['value']:.6g}" if best else ""
    return state.progress(
        percent=100.0 * ended / board["max_trials"],
        message=f"{ended}/{board['max_trials']} trials ended ({shown}){best_text}",
        metrics={board["metric"]: best["value"]} if best else None,
    )


def _timed_out(search: Job, cfg: dict[str, Any]) -> bool:
    limit = cfg.get("timeout_s")
    started = search.started_at or search.created_at
    if not limit:
        return False
    return (utcnow() - started).total_seconds() > float(limit)


def _new_trial(context: Context, session: Session, search: Job, existing: list[Job]) -> Job:
    cfg = search.config["search"]
    base = search.config["train"]
    number = len(existing)
    space = sampling.distributions(cfg["search_space"], cfg["strategy"])
    if cfg["strategy"] == "grid":
        chosen = sampling.grid_points(space, number + 1)[number]
    else:
        curves = rounds.of_jobs(session, existing)
        metric, direction = _metric(cfg, existing, curves)
        records = [_record(c, curves[c.id], metric, direction) for c in existing]
        built = sampling.study(
            space, records, direction, strategy=cfg["strategy"], seed=cfg["seed"]
        )
        chosen = sampling.ask(built, space)
    num_rounds = int(chosen.get("num_boost_round", base["num_boost_round"]))
    checked = xgb_params.validate_params(
        {**base["xgb_params"], **{k: v for k, v in chosen.items() if k != "num_boost_round"}},
        base["task_type"],
        max_depth_limit=context.settings.max_depth_limit,
    )
    child = Job(
        user_id=search.user_id,
        job_type="cv" if cfg.get("cv_folds") else "train",
        queue=queue_for(checked),
        model_name=search.model_name,
        dataset_id=search.dataset_id,
        parent_job_id=search.id,
        config={
            **base,
            "xgb_params": checked,
            "num_boost_round": num_rounds,
            "trial": {"number": number, "params": chosen, "search": _prune_config(cfg)},
        },
    )
    child.celery_task_id = publish.new_task_id()
    repository.create(session, child)
    shown = ", ".join(f"{k}={v}" for k, v in chosen.items())
    repository.add_event(
        session, search.id, "trial_created", JobStatus.RUNNING, f"trial {number}: {shown}"
    )
    return child


def _prune_config(cfg: dict[str, Any]) -> dict[str, Any]:
    keys = ("metric", "direction", "prune", "prune_warmup_rounds", "prune_every", "search_space")
    return {k: cfg.get(k) for k in keys} | {"strategy": cfg["strategy"]}


def _metric(
    cfg: dict[str, Any], children: list[Job], histories: dict[str, list[dict[str, Any]]]
) -> tuple[str, str]:
    """The search's metric (as asked, else the last validation metric of the first trial
    with a history, XGBoost's early-stopping metric) and direction. A cross-validated
    trial's `validation-<m>-mean` and `-std` name the metric `validation-<m>`."""
    metric = cfg.get("metric")
    if metric is None:
        for child in children:
            last = (histories.get(child.id) or [{}])[-1]
            names = [
                k.removesuffix(sampling.CV_MEAN)
                for k in last
                if k.startswith("validation-") and not k.endswith(sampling.CV_STD)
            ]
            if names:
                metric = names[-1]
                break
    metric = metric or "validation-unknown"
    return metric, cfg.get("direction") or sampling.default_direction(metric)


def _record(
    child: Job, history: list[dict[str, Any]], metric: str, direction: str
) -> sampling.TrialRecord:
    status = JobStatus(child.status)
    curve = sampling.curve(history, metric)
    value = None
    if status is JobStatus.SUCCEEDED and child.job_type == "cv":
        # the mean at the round the trial's model was refit for
        value = curve.get(int((child.result or {}).get("best_round") or 0))
    elif status is JobStatus.SUCCEEDED:
        early = bool(child.config.get("early_stopping_rounds"))
        value = sampling.trial_value(history, metric, direction, early)
    if status in ACTIVE:
        trial_state = TrialState.RUNNING
    elif value is not None:
        trial_state = TrialState.COMPLETE
    elif status is JobStatus.CANCELLED and (child.result or {}).get("pruned"):
        trial_state = TrialState.PRUNED
    else:
        trial_state = TrialState.FAIL
    trial = child.config["trial"]
    return sampling.TrialRecord(int(trial["number"]), trial["params"], trial_state, value, curve)


def _finish(session: Session, search: Job, children: list[Job], timed_out: bool) -> JobStatus:
    board = leaderboard(session, search, children)
    result = {k: v for k, v in board.items() if k != "trials"}
    best = board["best"]
    if search.cancel_requested:
        target, event, message = JobStatus.CANCELLED, "cancelled", "search cancelled"
    elif best is None:
        target, event, message = JobStatus.FAILED, "failed", "no trial succeeded"
    else:
        target, event = JobStatus.SUCCEEDED, "succeeded"
        message = f"best trial {best['number']}: {board['metric']} = {best['value']:.6g}"
        if timed_out:
            message += f" (stopped after timeout_s, {len(children)} trials)"
    fields: dict[str, Any] = {
        "result": result,
        "model_id": best["model_id"] if best else None,
        "progress": _progress(session, search, children).as_json(),
    }
    if target is JobStatus.FAILED:
        fields["error"] = state.job_error("NoTrialSucceeded", message, None).as_json()
    repository.transition(session, search.id, target, event=event, message=message, **fields)
    return target


@dataclass(frozen=True)
class _Row:
    job: Job
    record: sampling.TrialRecord


def leads(context: Context, trial: Job) -> bool:
    """Whether `trial` heads its search's leaderboard among the trials ended so far. The
    search's final best did when it ended, whatever ends after it."""
    with context.db.session() as session:
        search = session.get(Job, trial.parent_job_id)
        if search is None:
            return False
        best = leaderboard(session, search, trials(session, search.id))["best"]
    return best is not None and best["job_id"] == trial.id


def leaderboard(session: Session, search: Job, children: list[Job]) -> dict[str, Any]:
    """Trials best first (finished ones by the metric, then the others by number), with
    counts by state and the best so far."""
    cfg = search.config["search"]
    curves = rounds.of_jobs(session, children)
    metric, direction = _metric(cfg, children, curves)
    rows = [_Row(c, _record(c, curves[c.id], metric, direction)) for c in children]
    sign = -1.0 if direction == "maximize" else 1.0

    def key(row: _Row) -> tuple[int, float, int]:
        value = row.record.value
        scored = value is not None and math.isfinite(value)
        return (0 if scored else 1, sign * value if scored else 0.0, row.record.number)  # type: ignore[operator]

    ordered = sorted(rows, key=key)
    entries = [_entry(r) for r in ordered]
    best = next((e for e in entries if e["value"] is not None), None)
    counts = {s: 0 for s in ("queued", "running", "succeeded", "pruned", "failed", "cancelled")}
    for e in entries:
        counts[e["state"]] += 1
    return {
        "metric": metric,
        "direction": direction,
        "strategy": cfg["strategy"],
        "max_trials": cfg["max_trials"],
        "counts": counts,
        "best": best,
        "trials": entries,
    }


def _entry(row: _Row) -> dict[str, Any]:
    job, record = row.job, row.record
    status = JobStatus(job.status)
    pruned = record.state is TrialState.PRUNED
    return {
        "number": record.number,
        "job_id": job.id,
        "status": status.value,
        "state": "pruned" if pruned else status.value,
        "params": record.params,
        "value": record.value,
        "rounds": max(record.intermediate) if record.intermediate else 0,
        "model_id": job.model_id,
        "pruned_at_round": (job.result or {}).get("round") if pruned else None,
    }


def cancel(context: Context, search: Job) -> int:
    """Cancel the search and every active trial (queued ones at once, running ones within a
    round, through their cancel flag); returns how many trials were asked to stop."""
    with context.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == search.id)
            .values(cancel_requested=True, updated_at=utcnow())
        )
        active = [c for c in trials(session, search.id) if c.status in ACTIVE]
    for child in active:
        try:
            service.cancel(context, child, cascade=False)
        except Exception:  # noqa: S112 - it ended meanwhile: nothing to cancel
            continue
    with context.db.session() as session:
        ended = repository.transition(
            session,
            search.id,
            JobStatus.CANCELLED,
            event="cancelled",
            message=f"search cancelled; {len(active)} active trials asked to stop",
            completed_at=utcnow(),
        )
    if ended:
        finished.record(context, "tune", JobStatus.CANCELLED)
    return len(active)


class TrialPruning:
    """Called by a trial's training every round: stops it (`TrialPruned`) when the median
    pruner, over its search's finished trials at the same round, says so."""

    def __init__(self, context: Context, job: Job) -> None:
        self.context = context
        self.job = job
        self.cfg: dict[str, Any] = job.config["trial"]["search"]
        self.space = sampling.distributions(self.cfg["search_space"], self.cfg["strategy"])
        self.every = max(int(self.cfg.get("prune_every") or 1), 1)
        self.warmup = int(self.cfg.get("prune_warmup_rounds") or 0)
        # one check per progress write at most: each reads the finished trials' histories
        self.interval = context.settings.progress_interval_s
        self.checked_at: float | None = None

    def __call__(self, round_: int, history: list[dict[str, Any]]) -> None:
        if not self.cfg.get("prune") or round_ <= self.warmup or round_ % self.every:
            return
        if not any(name.startswith("validation-") for name in history[-1]):
            return  # this round scored no validation metric: nothing to judge
        now = time.monotonic()
        if self.checked_at is not None and now - self.checked_at < self.interval:
            return
        self.checked_at = now
        with self.context.db.session() as session:
            query = select(Job).where(
                Job.parent_job_id == self.job.parent_job_id,
                Job.status == JobStatus.SUCCEEDED,
                Job.id != self.job.id,
            )
            done = list(session.scalars(query))
            curves = rounds.of_jobs(session, done)
        if not done:
            return
        metric, direction = _metric(self.cfg, done, curves)
        records = [_record(c, curves[c.id], metric, direction) for c in done]
        built = sampling.study(
            self.space, records, direction, warmup_rounds=self.warmup, startup_trials=1
        )
        trial = self.job.config["trial"]
        mine = sampling.TrialRecord(
            len(records), trial["params"], TrialState.RUNNING, None, sampling.curve(history, metric)
        )
        if sampling.should_prune(built, self.space, mine):
            value = mine.intermediate.get(round_)
            raise TrialPruned(
                round_,
                f"pruned at round {round_}: {metric} = {value} is worse than the median of "
                f"{len(done)} finished trials at that round",
            )
