"""Hyper-parameter search (issue 19): a search through the service vs the same trainings run
back to back by a bare script, and the same search with pruning vs without.

The search runs one trial at a time (`max_parallel` 1, each trial on the worker's two
threads), so its baseline is a plain loop: `bench.bare_tune` trains the very params the
trials were sampled (read back from `GET /jobs/{id}/trials`) one after the other, as
`bench.bare_train` trains. The service's time runs from sending `POST /tune` to the search's
`completed_at`, learnt through LISTEN/NOTIFY (no polling to steal the worker's CPU): it
includes every gap between a trial's end and the next trial's start (scheduling, publish,
claim) and what each trial adds to a bare training (a model file, its SHAP summary, a
version). The random sampler's params depend only on the seed and the trial's number, so the
pruned search trains the same params as the unpruned one: the time saved and the best metric
kept are the pruner's alone.

Before either, a two-trial search on other data runs one trial on each of the worker's pool
processes (`_warm_up`): a process's first job pays for things no later job does, and the
script's process has its imports behind it.

Two trial sizes: quarter-second trainings (10,000 rows, 30 rounds), where what the service adds
to each trial shows most, and trainings of a few seconds (50,000 rows, 200 rounds, the size of
issue 14's fixed-cost target), a search a user would run on real data.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from bench import bare_tune
from bench.common import Bench, Stack, headers, log
from bench.data import classification_frame
from bench.report import Row, Target, seconds
from bench.training import seed_dataset, train_body

NAME = "tune"
SPACE = {
    # a low learning rate barely leaves the prior in these rounds: the pruner's losers
    "eta": {"type": "float", "low": 0.002, "high": 0.5, "log": True},
    "max_depth": {"type": "int", "low": 3, "high": 8},
}


SMALL = "search vs the same trainings back to back"
LARGE = "search of longer trials vs the same trainings back to back"


def expected(quick: bool) -> list[str]:
    return [SMALL, "search with pruning vs without", LARGE]


def search(
    stack: Stack, user: dict[str, str], body: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """Seconds from `POST /tune` to the search's commit as ended, and its leaderboard."""
    sent = time.time()
    response = stack.http.post("/tune", headers=headers(user), json=body)
    if response.status_code != 202:
        raise RuntimeError(f"POST /tune answered {response.status_code}: {response.text}")
    job_id = response.json()["job_id"]
    status = stack.final_jobs.wait({job_id}, timeout=3600)[job_id]
    job = stack.http.get(f"/jobs/{job_id}", headers=headers(user)).json()
    if status != "succeeded":
        raise RuntimeError(f"search ended {status}: {job.get('error')}")
    board: dict[str, Any] = stack.http.get(f"/jobs/{job_id}/trials", headers=headers(user)).json()
    running = 0.0
    for trial in board["trials"]:
        row = stack.http.get(f"/jobs/{trial['job_id']}", headers=headers(user)).json()
        running += _epoch(row["completed_at"]) - _epoch(row["started_at"])
    board["running_s"] = running  # what the trials themselves took, claim to commit
    return _epoch(job["completed_at"]) - sent, board


def _signed(value: float) -> str:
    return ("-" if value < 0 else "") + seconds(abs(value))


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _body(dataset_id: str, rounds: int, trials: int) -> dict[str, Any]:
    return {
        **train_body(dataset_id, rounds),
        "model_name": "bench-tune",
        "search_space": SPACE,
        "max_trials": trials,
        "max_parallel": 1,
        "strategy": "random",
        "seed": 7,
        "prune_warmup_rounds": max(rounds // 5, 1),
    }


def _warm_up(stack: Stack, user: dict[str, str]) -> None:
    """A search of two trials at once on other data first, so that each of the worker's two
    pool processes has run a job: a fresh process's first job pays for what no later job
    does (its process, first connections, the first XGBoost call: ~0.6 s of the first
    search's first trial here, and the first on the other process ~0.1 s), while the
    script's process has its imports behind it. The measured search still loads its own
    data in its first trial, as the script does."""
    dataset_id, _ = seed_dataset(stack, user, classification_frame(1_000), "tune-warm-up")
    search(stack, user, {**_body(dataset_id, 5, 2), "max_parallel": 2, "prune": False})


def _against_script(
    stack: Stack, user: dict[str, str], measure: str, rows: int, rounds: int, trials: int
) -> tuple[Row, float, dict[str, Any], dict[str, Any]]:
    """The search without pruning against its trainings back to back, in the order search,
    script, script, search: each side is a block of time, and the machine's speed drifts
    from one minute to the next (the script's 20 trainings took 5.3 s, then 7.2 s half an
    hour later), which this order cancels where the drift is steady. Returns the row, the
    first search's seconds, its leaderboard and the request body."""
    log(f"tune: seeding {rows:,} rows")
    dataset_id, parquet = seed_dataset(stack, user, classification_frame(rows), f"tune-{rows}")
    body = _body(dataset_id, rounds, trials)
    first_s, first = search(stack, user, {**body, "prune": False})
    log(f"tune: {trials}-trial search of {rows:,} rows without pruning {seconds(first_s)}")
    # the random sampler draws the same params for the same seed: both searches train these
    params = [t["params"] for t in sorted(first["trials"], key=lambda t: t["number"])]
    # in this process: the clock starts after the imports either way, and a subprocess's
    # imports would cost the quick run seconds
    bare = [bare_tune.run(parquet, rounds, params)["seconds"] for _ in range(2)]
    log(f"tune: the same trainings back to back {seconds(bare[0])}, {seconds(bare[1])}")
    second_s, second = search(stack, user, {**body, "prune": False})
    log(f"tune: the same search again {seconds(second_s)}")
    service, script = (first_s + second_s) / 2, sum(bare) / 2
    running = (first["running_s"] + second["running_s"]) / 2
    size = f"{trials} trials, one at a time, of {rows:,} rows × 30 features, {rounds} rounds"
    row = Row(
        NAME,
        measure,
        f"{seconds(service)} (mean of {seconds(first_s)}, {seconds(second_s)})",
        f"{seconds(script)} (mean of {seconds(bare[0])}, {seconds(bare[1])})",
        service / script,
        Target("<=", 1.10),
        f"{size}; order search, script, script, search; {_signed((service - script) / trials)} "
        f"more per trial: the trials' own runs (claim to commit) "
        f"{_signed((running - script) / trials)}, the gaps between them "
        f"{_signed((service - running) / trials)}",
    )
    return row, first_s, first, body


def run(bench: Bench) -> list[Row]:
    """Trials of a quarter of a second (where the service's fixed cost per trial shows most)
    and of a few seconds (a search a user would run on data of issue 14's size)."""
    cfg = bench.config
    stack = bench.stack("postgresql", workers=1)
    user = stack.create_user()
    _warm_up(stack, user)
    small, plain_s, plain, body = _against_script(
        stack, user, SMALL, cfg.tune_rows, cfg.tune_rounds, cfg.tune_trials
    )
    pruned_s, pruned = search(stack, user, {**body, "prune": True})
    log(f"tune: the same search with pruning {seconds(pruned_s)}")
    same_params = [t["params"] for t in sorted(pruned["trials"], key=lambda t: t["number"])] == [
        t["params"] for t in sorted(plain["trials"], key=lambda t: t["number"])
    ]
    best_plain, best_pruned = plain["best"]["value"], pruned["best"]["value"]
    saved = plain_s - pruned_s
    pruning = Row(
        NAME,
        "search with pruning vs without",
        seconds(pruned_s),
        seconds(plain_s),
        pruned_s / plain_s,
        None,
        f"{pruned['counts']['pruned']} of {cfg.tune_trials} trials pruned, "
        f"{seconds(abs(saved))} {'saved' if saved >= 0 else 'lost'}; best {plain['metric']} "
        f"{best_pruned:.5f} with pruning, {best_plain:.5f} without"
        f"{'' if same_params else '; the params differed (not expected)'}",
    )
    large, _, _, _ = _against_script(
        stack, user, LARGE, cfg.tune_large_rows, cfg.tune_large_rounds, cfg.tune_trials
    )
    return [small, pruning, large]
