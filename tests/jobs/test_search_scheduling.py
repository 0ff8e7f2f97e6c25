"""A search's state lives in the database: any process can schedule it (no worker here)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState
from sqlalchemy import select

from tests.support import auth, classification_frame, create_user, upload
from tests.support.jobs import in_process, submit
from xgenerator.context import Context
from xgenerator.datasets import repository as datasets
from xgenerator.db.tables import Job
from xgenerator.jobs import reconciler, repository, rounds, runner, sampling, search, trial_data
from xgenerator.jobs.status import JobStatus
from xgenerator.ml import train as ml_train

SPACE = {
    "eta": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
    "max_depth": {"type": "int", "low": 1, "high": 6},
}


def trials_of(context: Context, job_id: str) -> list[Job]:
    with context.db.session() as session:
        return search.trials(session, job_id)


def search_body(client: TestClient, user: dict[str, str], max_trials: int) -> dict[str, Any]:
    """A `/tune` body on a new 100-row dataset: two trials at a time."""
    dataset_id = upload(client, user, classification_frame(100)).json()["dataset_id"]
    return {
        "model_name": "s",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "search_space": SPACE,
        "max_trials": max_trials,
        "max_parallel": 2,
    }


def end_without_hook(context: Context, job: Job, status: JobStatus) -> None:
    """A trial's end whose scheduling step never ran (the process died right after it)."""
    with context.db.session() as session:
        repository.claim_job(session, job.id, "gone", 60)
        assert repository.transition(session, job.id, status, event=status.value)


def test_the_reconciler_schedules_a_search_a_dead_process_left_waiting(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    body = search_body(client, user, max_trials=3)
    keyed = {**auth(user), "Idempotency-Key": "search-1"}
    response = client.post("/tune", headers=keyed, json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.json()["status"] == "running"
    # the answer says what happened: the search runs, its first trials are submitted
    assert response.json()["message"] == (
        f"search running: 2 of up to 3 trials submitted as train jobs (2 at a time); "
        f"follow GET /jobs/{job_id}/trials"
    )
    replayed = client.post("/tune", headers=keyed, json=body)
    assert replayed.status_code == 200 and replayed.json()["job_id"] == job_id
    assert "already submitted" in replayed.json()["message"]
    other = client.post("/tune", headers=keyed, json={**body, "seed": 9})
    assert other.status_code == 409
    first = trials_of(context, job_id)
    assert [t.config["trial"]["number"] for t in first] == [0, 1]  # max_parallel at once
    assert all(t.status == "queued" and t.parent_job_id == job_id for t in first)

    end_without_hook(context, first[0], JobStatus.FAILED)
    reconciler.reconcile(context)  # its sweep schedules every running search
    after = trials_of(context, job_id)
    assert [t.config["trial"]["number"] for t in after] == [0, 1, 2]
    shown = client.get(f"/jobs/{job_id}", headers=auth(user)).json()["progress"]
    assert shown["message"] == "1/3 trials ended (2 queued, 1 failed)"
    assert round(shown["percent"], 1) == 33.3
    search.schedule(context, job_id)  # idempotent: max_trials reached, nothing more
    assert len(trials_of(context, job_id)) == 3

    for trial in after[1:]:
        end_without_hook(context, trial, JobStatus.FAILED)
    search.sweep(context)
    with context.db.session() as session:
        parent = session.get(Job, job_id)
        assert parent is not None
        assert parent.status == "failed" and parent.error is not None
        assert parent.error["error_type"] == "NoTrialSucceeded"
        assert parent.result is not None and parent.result["counts"]["failed"] == 3
        left = session.scalars(select(Job).where(Job.status.in_(["queued", "running"])))
        assert list(left) == []
    # deleting the finished search deletes its trials' records too
    assert client.delete(f"/jobs/{job_id}", headers=auth(user)).json()["status"] == "deleted"
    with context.db.session() as session:
        assert list(session.scalars(select(Job.id).where(Job.user_id == parent.user_id))) == []


def test_a_rebuilt_study_asks_the_same_params_on_any_process() -> None:
    space = sampling.distributions(SPACE, "tpe")
    done = [
        sampling.TrialRecord(
            i,
            {"eta": 0.01 * (i + 1), "max_depth": i % 6 + 1},
            TrialState.COMPLETE,
            0.5 - 0.01 * i,
            {1: 0.6},
        )
        for i in range(8)
    ]
    asked = [sampling.ask(sampling.study(space, done, "minimize", seed=7), space) for _ in range(2)]
    assert asked[0] == asked[1]
    assert 1e-3 <= asked[0]["eta"] <= 1.0 and 1 <= asked[0]["max_depth"] <= 6


def test_consecutive_trials_draw_independently() -> None:
    """Seeds `seed + n` gave trials 0 and 1 of a random search draws 0.005 apart on the unit
    scale (legacy Mersenne Twister states of adjacent seeds); each trial's seed now comes
    from a SeedSequence of (search seed, trial number)."""
    unit = {
        "a": {"type": "float", "low": 0.0, "high": 1.0},
        "b": {"type": "float", "low": 0.0, "high": 1.0},
    }
    space = sampling.distributions(unit, "random")
    for seed in range(5):
        first = sampling.ask(
            sampling.study(space, [], "minimize", strategy="random", seed=seed), space
        )
        record = sampling.TrialRecord(0, first, TrialState.COMPLETE, 0.5, {})
        second = sampling.ask(
            sampling.study(space, [record], "minimize", strategy="random", seed=seed), space
        )
        assert min(abs(first[k] - second[k]) for k in unit) > 0.01, (seed, first, second)


def test_grid_points_and_the_pruners_verdict() -> None:
    grid = {
        "max_depth": {"type": "int", "low": 1, "high": 2},
        "eta": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
    }
    points = sampling.grid_points(sampling.distributions(grid, "grid"), 100)
    assert len(points) == 6 and len({tuple(sorted(p.items())) for p in points}) == 6
    assert {p["eta"] for p in points} == {0.1, 0.2, 0.3}

    space = sampling.distributions(SPACE, "tpe")
    good = sampling.TrialRecord(
        0,
        {"eta": 0.3, "max_depth": 2},
        TrialState.COMPLETE,
        0.2,
        {r: 0.6 - 0.05 * r for r in range(1, 9)},
    )
    built = sampling.study(space, [good], "minimize", warmup_rounds=2)

    def running(values: dict[int, float]) -> sampling.TrialRecord:
        return sampling.TrialRecord(
            1, {"eta": 0.001, "max_depth": 2}, TrialState.RUNNING, None, values
        )

    assert sampling.should_prune(built, space, running({r: 0.69 for r in range(1, 5)}))
    assert not sampling.should_prune(built, space, running({1: 0.69, 2: 0.69}))  # warm-up
    assert not sampling.should_prune(built, space, running({r: 0.1 for r in range(1, 5)}))


def test_a_cross_validated_trial_is_read_by_its_fold_means() -> None:
    means = {1: 0.5, 2: 0.4, 3: 0.3}
    history = [
        {
            "round": r,
            "train-logloss-mean": mean - 0.1,
            "train-logloss-std": 0.01,
            "validation-logloss-mean": mean,
            "validation-logloss-std": 0.02,
        }
        for r, mean in means.items()
    ]
    trial = Job(
        id="trial0",
        job_type="cv",
        status=JobStatus.SUCCEEDED,
        result={"best_round": 2},
        config={"trial": {"number": 0, "params": {"eta": 0.1}}},
    )
    cfg = {"metric": None, "direction": None}
    metric, direction = search._metric(cfg, [trial], {"trial0": history})
    assert (metric, direction) == ("validation-logloss", "minimize")  # not the `-std` key
    record = search._record(trial, history, metric, direction)
    # the pruner's curve is the fold means; the score, the mean at the round refit for
    assert record.intermediate == means
    assert record.value == 0.4 and record.state is TrialState.COMPLETE


def test_a_trial_leads_when_no_ended_trial_is_better(client: TestClient, context: Context) -> None:
    """Whether a trial keeps a SHAP summary: it leads the trials ended so far."""
    user = create_user(client)
    body = search_body(client, user, max_trials=2)
    job_id = client.post("/tune", headers=auth(user), json=body).json()["job_id"]
    first, second = trials_of(context, job_id)

    def succeed(trial: Job, logloss: float) -> None:
        with context.db.session() as session:
            repository.claim_job(session, trial.id, "w", 60)
            rounds.write(session, trial.id, [{"round": 1, "validation-logloss": logloss}])
            assert repository.transition(session, trial.id, JobStatus.SUCCEEDED, event="ok")

    succeed(first, 0.5)
    assert search.leads(context, first)  # the only one ended: the other is still queued
    succeed(second, 0.7)
    assert not search.leads(context, second) and search.leads(context, first)


def test_an_ended_trials_rounds_are_read_once_per_process(
    client: TestClient, context: Context
) -> None:
    """A search reads every trial's rounds each time it schedules one: an ended trial's never
    change, so they are read from the database once; a running trial's, every time."""
    user = create_user(client)
    job_id = client.post("/tune", headers=auth(user), json=search_body(client, user, 2)).json()[
        "job_id"
    ]
    ended, running = trials_of(context, job_id)
    with context.db.session() as session:
        for trial in (ended, running):
            repository.claim_job(session, trial.id, "w", 60)
            rounds.write(session, trial.id, [{"round": 1, "validation-logloss": 0.5}])
        assert repository.transition(session, ended.id, JobStatus.SUCCEEDED, event="ok")
    first = {job.id: list(h) for job, h in zip(*_histories(context, job_id), strict=True)}
    with context.db.session() as session:  # rows the cache must not hide, were they to change
        rounds.write(session, ended.id, [{"round": 1, "validation-logloss": 0.9}])
        rounds.write(session, running.id, [{"round": 1, "validation-logloss": 0.4}])
    second = {job.id: list(h) for job, h in zip(*_histories(context, job_id), strict=True)}
    assert second[ended.id] == first[ended.id] == [{"round": 1, "validation-logloss": 0.5}]
    assert second[running.id] == [{"round": 1, "validation-logloss": 0.4}]


def _histories(context: Context, search_id: str) -> tuple[list[Job], list[list[Any]]]:
    with context.db.session() as session:
        children = search.trials(session, search_id)
        read = rounds.of_jobs(session, children)
        return children, [read[c.id] for c in children]


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the datasets jobs load in this process, in order."""
    loaded: list[str] = []
    load = datasets.load_frame

    def counted(store: Any, dataset: Any, **kwargs: Any) -> Any:
        loaded.append(dataset.id)
        return load(store, dataset, **kwargs)

    monkeypatch.setattr(datasets, "load_frame", counted)
    return loaded


def test_a_searchs_trials_in_one_process_load_and_bin_its_data_once(
    client: TestClient, context: Context, monkeypatch: pytest.MonkeyPatch, loads: list[str]
) -> None:
    """The kept job process runs trial after trial (jobs/isolation.py): the second trial of a
    search trains on the data the first one loaded, coded and binned (ml/reuse.py); a job of
    anything else drops it before loading its own."""
    built = {"matrices": 0}
    matrices = ml_train._matrices

    def counted_matrices(*args: Any, **kwargs: Any) -> Any:
        built["matrices"] += 1
        return matrices(*args, **kwargs)

    monkeypatch.setattr(ml_train, "_matrices", counted_matrices)
    user = create_user(client)
    body = {**search_body(client, user, max_trials=3), "prune": False}
    job_id = client.post("/tune", headers=auth(user), json=body).json()["job_id"]
    first, second = trials_of(context, job_id)
    here = in_process(context)
    assert runner.run(here, first.id, "test:1") == "succeeded"
    assert runner.run(here, second.id, "test:1") == "succeeded"
    assert loads == [body["dataset_id"]] and built["matrices"] == 1

    plain = submit(client, user, body["dataset_id"], 3)
    assert runner.run(here, plain, "test:1") == "succeeded"
    assert loads == [body["dataset_id"]] * 2 and built["matrices"] == 2
    third = trials_of(context, job_id)[2]  # the search's data was dropped for the plain job
    assert runner.run(here, third.id, "test:1") == "succeeded"
    assert loads == [body["dataset_id"]] * 3 and built["matrices"] == 3
    models = {t.model_id for t in trials_of(context, job_id)}
    assert len(models) == 3 and None not in models


def test_a_frame_past_the_bound_is_not_kept_for_the_next_trial(
    client: TestClient, context: Context, monkeypatch: pytest.MonkeyPatch, loads: list[str]
) -> None:
    """A kept job process that holds too much after a job exits (jobs/isolation.py): data
    whose prepared forms could push it out is not kept."""
    monkeypatch.setattr(trial_data, "MAX_FRAME_BYTES", 1000)  # a 100-row frame is larger
    user = create_user(client)
    body = {**search_body(client, user, max_trials=2), "prune": False}
    job_id = client.post("/tune", headers=auth(user), json=body).json()["job_id"]
    here = in_process(context)
    for trial in trials_of(context, job_id):
        assert runner.run(here, trial.id, "test:1") == "succeeded"
    assert loads == [body["dataset_id"]] * 2


def test_a_pruning_searchs_trials_are_judged_at_rounds_they_scored(
    client: TestClient, context: Context
) -> None:
    """A 30-round trial's default curve scores every 2nd round: a check at an odd round had
    nothing to judge and, at most one check per progress interval, was the trial's only one.
    A check now waits for a round with a value, and a pruning search's trials all score on
    the same rounds, multiples of `prune_every` (the pruner compares trials round for
    round), no denser than the default curve."""
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(300)).json()["dataset_id"]
    body: dict[str, Any] = {
        "model_name": "s",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 30,
        # trial 0 learns; trial 1 barely leaves the prior
        "search_space": {"eta": {"type": "categorical", "choices": [0.5, 1e-4]}},
        "strategy": "grid",
        "max_trials": 2,
        "max_parallel": 1,
        "prune_warmup_rounds": 4,  # the first check at round 5
    }
    extras: dict[str, dict[str, Any]] = {
        "pruning": {},
        "every 3rd": {"prune_every": 3},
        "own curve": {"eval_every": 4},
        "longest trial": {
            "search_space": {
                **body["search_space"],
                "num_boost_round": {"type": "int", "low": 10, "high": 100},
            }
        },
        "early stopping": {"early_stopping_rounds": 5},
        "not pruning": {"prune": False},
        "cross-validated": {"cv_folds": 3},
    }
    configs = {
        name: client.post("/tune", headers=auth(user), json={**body, **extra}).json()["job_id"]
        for name, extra in extras.items()
    }
    first = {name: trials_of(context, job_id)[0] for name, job_id in configs.items()}
    curves = {name: trial.config.get("eval_every") for name, trial in first.items()}
    assert curves == {
        "pruning": 2,  # ceil(30 / 20): the default curve's
        "every 3rd": 3,
        "own curve": 4,  # the body's, kept
        "longest trial": 5,  # ceil(100 / 20), for every trial of the search
        "early stopping": 1,  # it reads every round
        "not pruning": None,  # the default curve
        "cross-validated": None,
    }

    settings = context.settings.model_copy(
        update={"isolate_jobs": False, "progress_interval_s": 3600.0}  # one check per trial
    )
    here = replace(context, settings=settings)
    # no value at round 5: judged at the next round that scored one
    for name, expected_round in (("pruning", 6), ("own curve", 8)):
        assert runner.run(here, first[name].id, "test:1") == "succeeded"
        second = trials_of(context, configs[name])[1]
        assert second.config["trial"]["params"] == {"eta": 1e-4}
        assert runner.run(here, second.id, "test:1") == "pruned"
        with context.db.session() as session:
            pruned = session.get(Job, second.id)
            assert pruned is not None and pruned.result is not None
            assert pruned.result["round"] == expected_round
