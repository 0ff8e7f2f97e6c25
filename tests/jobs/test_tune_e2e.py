"""Hyper-parameter searches end to end with a real worker (both databases)."""

from __future__ import annotations

import os
import signal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload, wait_for
from tests.support.jobs import FAST_LEASE, submit_job, wait_final
from xgenerator.context import Context
from xgenerator.db.tables import Job, Model
from xgenerator.jobs import reconciler, repository
from xgenerator.settings import Settings


def submit_tune(
    client: TestClient, user: dict[str, str], dataset_id: str, rounds: int, **extra: Any
) -> str:
    return submit_job(client, user, "tune", dataset_id, rounds, "tuned", **extra)


def leaderboard(client: TestClient, user: dict[str, str], job_id: str) -> dict[str, Any]:
    response = client.get(f"/jobs/{job_id}/trials", headers=auth(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def summary_event(client: TestClient, user: dict[str, str], job_id: str) -> str:
    """What a succeeded trial did after its success: `shap_summary` or `..._skipped`."""

    def said() -> str | None:
        events = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
        names = {e["event"] for e in events} & {"shap_summary", "shap_summary_skipped"}
        return names.pop() if names else None

    return wait_for(said, 60, 0.1, f"the SHAP summary of trial {job_id}, or why it has none")


def children(context: Context, job_id: str) -> list[Job]:
    with context.db.session() as session:
        return list(session.scalars(select(Job).where(Job.parent_job_id == job_id)))


def test_search_finds_the_high_learning_rate_and_keeps_its_model(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(300)).json()["dataset_id"]
    # 8 rounds: a learning rate of 1e-4 barely leaves the prior; 0.3 and more learn the data
    job_id = submit_tune(
        client,
        user,
        dataset_id,
        8,
        search_space={
            "eta": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "max_depth": {"type": "int", "low": 1, "high": 4},
        },
        max_trials=6,
        max_parallel=2,
        strategy="random",
        seed=3,
        prune=False,
    )
    final = wait_final(client, user, job_id, timeout=120)
    assert final["status"] == "succeeded", final
    board = leaderboard(client, user, job_id)
    assert board["metric"] == "validation-logloss" and board["direction"] == "minimize"
    trials = board["trials"]
    # exactly max_trials trials, numbered once each, none run twice
    assert sorted(t["number"] for t in trials) == list(range(6))
    rows = children(context, job_id)
    assert len(rows) == 6 and all(r.attempts == 1 and r.job_type == "train" for r in rows)
    assert all(t["status"] == "succeeded" for t in trials)
    values = [t["value"] for t in trials]
    assert values == sorted(values)  # the leaderboard is best first
    etas = [t["params"]["eta"] for t in trials]
    assert min(etas) < 0.01 < max(etas)  # the space had both regions in it
    best = board["best"]
    assert best == trials[0]
    assert best["params"]["eta"] > 0.1
    # the trials each ran with their params
    by_id = {r.id: r for r in rows}
    for t in trials:
        cfg = by_id[t["job_id"]].config
        assert cfg["xgb_params"]["max_depth"] == t["params"]["max_depth"]
    assert final["progress"]["percent"] == 100.0
    assert final["progress"]["message"].startswith("6/6 trials ended (6 succeeded); best")
    # the best trial's model is the search's result, a version under the search's name
    assert final["model_id"] == best["model_id"] and final["result"]["best"] == best
    with context.db.session() as session:
        models = list(session.scalars(select(Model).where(Model.name == "tuned")))
    assert len(models) == 6 and final["model_id"] in {m.id for m in models}
    # A trial keeps a SHAP summary (after its success) only when it leads the search as it
    # ends, so the best has one; it reads a small sample (300 rows here; a job reads 2,000).
    said = {t["job_id"]: summary_event(client, user, t["job_id"]) for t in trials}
    assert said[best["job_id"]] == "shap_summary"
    skipped = [t for t in trials if said[t["job_id"]] == "shap_summary_skipped"]
    assert skipped, "every trial led the search: the seed no longer tests the skipping"
    for t in trials:
        summary = client.get(f"/models/{t['model_id']}/importance?type=shap", headers=auth(user))
        if said[t["job_id"]] == "shap_summary":
            assert summary.json()["rows"] == 200
        else:
            assert summary.status_code == 404
            assert "did not lead the search" in summary.json()["message"]
    # trials are listed in /jobs with their search
    listed = client.get("/jobs?job_type=train", headers=auth(user)).json()["jobs"]
    assert {j["parent_job_id"] for j in listed} == {job_id}


def test_a_clearly_bad_trial_is_pruned(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(300)).json()["dataset_id"]
    # a grid, one trial at a time: trial 0 learns; the next ones barely move and are pruned
    job_id = submit_tune(
        client,
        user,
        dataset_id,
        40,
        search_space={"eta": {"type": "categorical", "choices": [0.5, 1e-4, 2e-4]}},
        max_trials=10,
        strategy="grid",
        prune_warmup_rounds=3,
    )
    final = wait_final(client, user, job_id, timeout=120)
    assert final["status"] == "succeeded", final
    board = leaderboard(client, user, job_id)
    assert final["config"]["search"]["max_trials"] == 3  # lowered to the grid's points
    assert len(board["trials"]) == 3 and board["counts"]["pruned"] >= 1
    assert board["best"]["params"] == {"eta": 0.5} and board["best"]["rounds"] == 40
    pruned = [t for t in board["trials"] if t["state"] == "pruned"]
    for t in pruned:
        assert t["status"] == "cancelled" and t["value"] is None
        assert 3 < t["pruned_at_round"] < 40 and t["rounds"] < 40
        detail = client.get(f"/jobs/{t['job_id']}", headers=auth(user)).json()
        assert detail["result"]["pruned"] is True and "median" in detail["result"]["reason"]
        events = client.get(f"/jobs/{t['job_id']}/events", headers=auth(user)).json()["events"]
        assert [e for e in events if e["event"] == "pruned"]


def test_cancelling_a_search_stops_every_trial(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2000)).json()["dataset_id"]
    job_id = submit_tune(
        client,
        user,
        dataset_id,
        5000,
        xgb_params={"nthread": 1},
        search_space={"max_depth": {"type": "int", "low": 6, "high": 8}},
        max_trials=5,
        max_parallel=3,
        prune=False,
    )

    def running() -> bool:
        return any(r.status == "running" for r in children(context, job_id))

    wait_for(running, 60, 0.1, "a trial to start")
    response = client.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    def all_ended() -> list[Job] | None:
        rows = children(context, job_id)
        return rows if all(r.status in ("cancelled", "failed", "succeeded") for r in rows) else None

    rows = wait_for(all_ended, 60, 0.1, "every trial to stop")
    assert len(rows) == 3  # no trial was started after the cancel
    assert all(r.status == "cancelled" for r in rows)
    search = client.get(f"/jobs/{job_id}", headers=auth(user)).json()
    assert search["status"] == "cancelled" and search["model_id"] is None


def test_a_cross_validated_search_scores_trials_by_the_fold_mean_and_refits_the_best(
    client: TestClient, context: Context, worker: WorkerProcess
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(150)).json()["dataset_id"]
    job_id = submit_tune(
        client,
        user,
        dataset_id,
        6,
        xgb_params={"nthread": 1},
        search_space={"eta": {"type": "float", "low": 0.01, "high": 0.5, "log": True}},
        cv_folds=3,
        max_trials=3,
        max_parallel=2,
        strategy="random",
        seed=5,
        prune=False,
    )
    final = wait_final(client, user, job_id, timeout=120)
    assert final["status"] == "succeeded", final
    board = leaderboard(client, user, job_id)
    assert board["metric"] == "validation-logloss"  # named from the trials' `-mean` keys
    rows = children(context, job_id)
    assert len(rows) == 3 and all(r.job_type == "cv" and r.attempts == 1 for r in rows)
    for t in board["trials"]:
        detail = client.get(f"/jobs/{t['job_id']}", headers=auth(user)).json()
        result = detail["result"]
        assert result["folds"] == 3 and detail["config"]["refit"] is True
        # the score is the fold mean at the cross-validation's best round
        assert t["value"] == result["best"]["validation-logloss-mean"]
        assert t["model_id"] == result["model_id"] == detail["model_id"]
    values = [t["value"] for t in board["trials"]]
    assert values == sorted(values)
    best = board["best"]
    assert final["model_id"] == best["model_id"]
    best_result = client.get(f"/jobs/{best['job_id']}", headers=auth(user)).json()["result"]
    model = client.get(f"/models/{best['model_id']}", headers=auth(user)).json()
    # the search's model: refit on every row for the best round's count, named as asked
    assert model["name"] == "tuned" and model["num_boost_round"] == best_result["best_round"]
    assert model["metrics"]["validation-logloss-mean"] == best["value"]
    events = client.get(f"/jobs/{job_id}/events", headers=auth(user)).json()["events"]
    notes = [e["message"] for e in events if e["event"] == "search_adjusted"]
    assert any("3-fold cross-validation" in n and "test_size" in n for n in notes)


def test_bad_requests_are_refused_at_submission(client: TestClient) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(100)).json()["dataset_id"]
    body = {
        "model_name": "t",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"search_space": {"max_depth": {"type": "int", "low": 1, "high": 99}}}, "max_depth"),
        ({"search_space": {"bogus": {"type": "float", "low": 0, "high": 1}}}, "bogus"),
        ({"search_space": {"eta": {"type": "float", "low": 0, "high": 1, "log": True}}}, "eta"),
        (
            {"search_space": {"eta": {"type": "float", "low": 0.1, "high": 1}}, "strategy": "grid"},
            "eta",
        ),
        (
            {"search_space": {"eta": {"type": "float", "low": 0.1, "high": 1}}, "cv_folds": 1},
            "cv_folds",
        ),
    ]
    for extra, named in cases:
        response = client.post("/tune", headers=auth(user), json={**body, **extra})
        assert response.status_code == 422, (extra, response.text)
        assert named in response.text
    jobs = client.get("/jobs", headers=auth(user)).json()["jobs"]
    assert jobs == []  # nothing was recorded


def test_a_worker_killed_mid_search_retries_that_trial_only(
    client: TestClient, context: Context, settings: Settings
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2000)).json()["dataset_id"]
    doomed = WorkerProcess(settings, "doomed", concurrency=1, extra_env=FAST_LEASE)
    doomed.start()
    job_id = submit_tune(
        client,
        user,
        dataset_id,
        80,
        xgb_params={"nthread": 1},
        search_space={"max_depth": {"type": "int", "low": 5, "high": 7}},
        max_trials=3,
        strategy="grid",
        prune=False,
    )

    def second_trial_training() -> Job | None:
        rows = [r for r in children(context, job_id) if r.config["trial"]["number"] == 1]
        return rows[0] if rows and (rows[0].progress or {}).get("round") else None

    victim = wait_for(second_trial_training, 60, 0.05, "trial 1 to train")
    assert doomed.process is not None
    os.killpg(doomed.process.pid, signal.SIGKILL)
    doomed.stop()

    def recovered() -> bool:
        with context.db.session() as session:
            expired = repository.expired_leases(session, 10)
        reconciler.recover_expired(context, expired, reconciler.Report())
        return any(r.id == victim.id and r.status != "running" for r in children(context, job_id))

    # the next worker starts while the dead one's lease runs out
    survivor = WorkerProcess(settings, "survivor", concurrency=1, extra_env=FAST_LEASE)
    survivor.start()
    try:
        wait_for(recovered, 30, 0.2, "the killed trial to be requeued")
        final = wait_final(client, user, job_id, timeout=120)
    finally:
        survivor.stop()
    assert final["status"] == "succeeded", final
    rows = sorted(children(context, job_id), key=lambda r: r.config["trial"]["number"])
    assert [r.config["trial"]["number"] for r in rows] == [0, 1, 2]  # max_trials, no extra
    assert [r.attempts for r in rows] == [1, 2, 1]  # only the killed trial ran again
    assert all(r.status == "succeeded" for r in rows)
