"""GET /jobs/{id}/stream and /history: order, end on the final status, resume by id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx_sse import EventSource

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from xgenerator.api.app import create_app
from xgenerator.api.routes import stream
from xgenerator.client.sse import StreamMessage, messages
from xgenerator.context import Context
from xgenerator.db.tables import Job
from xgenerator.jobs import repository
from xgenerator.jobs import rounds as job_rounds
from xgenerator.jobs.status import JobStatus
from xgenerator.jobs.stream import downsample
from xgenerator.settings import Settings


def new_job(context: Context, user_id: str, rounds: int) -> str:
    with context.db.session() as session:
        job = Job(
            user_id=user_id,
            job_type="train",
            queue="train",
            model_name="m",
            config={"num_boost_round": rounds},
        )
        return repository.create(session, job).id


def point(r: int) -> dict[str, Any]:
    return {"round": r, "train-logloss": 1 / r, "validation-logloss": 1.5 / r}


def drive(
    context: Context,
    job_id: str,
    rounds: int,
    final: JobStatus = JobStatus.SUCCEEDED,
    pause: float = 0.0,
    loading: threading.Event | None = None,
) -> None:
    """What a worker writes, in a worker's order: claim, progress per round, finish. With
    `loading`, the job stays in its "loading data" state until that event is set."""
    with context.db.session() as session:
        attempt = repository.claim(session, job_id, "w1", 60)
    assert attempt == 1
    with context.db.session() as session:
        repository.heartbeat(
            session, job_id, attempt, 60, progress={"percent": 0, "message": "loading data"}
        )
    if loading is not None:
        assert loading.wait(30), "nobody saw the job loading its data"
    for r in range(1, rounds + 1):
        time.sleep(pause)
        with context.db.session() as session:
            job_rounds.write(session, job_id, [point(r)])  # appended with the progress
            repository.heartbeat(
                session,
                job_id,
                attempt,
                60,
                progress={
                    "percent": r / rounds * 100,
                    "round": r,
                    "total_rounds": rounds,
                    "metrics": point(r),
                },
            )
    with context.db.session() as session:
        error = {"error_type": "Boom", "message": "it broke", "details": None}
        extra: dict[str, Any] = {"error": error} if final == JobStatus.FAILED else {}
        assert repository.transition(
            session, job_id, final, event=final.value, attempt=attempt, **extra
        )


def read(
    client: TestClient,
    user: dict[str, str],
    job_id: str,
    last_id: str | None = None,
    seen: Callable[[StreamMessage], None] = lambda message: None,
) -> list[StreamMessage]:
    headers = auth(user) | ({"Last-Event-ID": last_id} if last_id else {})
    with client.stream("GET", f"/jobs/{job_id}/stream", headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        # no cache or proxy buffering may hold a live stream back; the API's floor headers too
        assert response.headers["cache-control"] == "private, no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-content-type-options"] == "nosniff"
        # TestClient's response is httpx2's, whose streaming API httpx-sse reads alike
        out = []
        for message in messages(EventSource(response).iter_sse()):  # type: ignore[arg-type]
            seen(message)
            out.append(message)
        return out


def shape(messages: list[StreamMessage]) -> list[tuple[str, Any]]:
    """What each message says, without the round-less progress snapshots."""
    out = []
    for m in messages:
        if m.event == "progress" and m.data["round"] is None:
            continue
        key = {"event": "event", "status": "status", "progress": "round"}[m.event]
        out.append((m.event, m.data[key]))
    return out


FINISHED = [
    ("event", "submitted"),
    ("status", "queued"),
    ("event", "started"),
    ("status", "running"),
    ("progress", 1),
    ("progress", 2),
    ("progress", 3),
    ("event", "succeeded"),
    ("status", "succeeded"),
]


def test_a_finished_job_replays_in_order_and_ends(client: TestClient, context: Context) -> None:
    user = create_user(client)
    job_id = new_job(context, user["user_id"], 3)
    drive(context, job_id, 3)
    messages = read(client, user, job_id)
    assert shape(messages) == FINISHED
    rounds = [m.data for m in messages if m.event == "progress"]
    assert [r["percent"] for r in rounds] == [33.33, 66.67, 100.0]
    assert rounds[0]["metrics"] == {"train-logloss": 1.0, "validation-logloss": 1.5}
    final = messages[-1].data
    assert final["status"] == "succeeded" and final["progress"]["round"] == 3
    ids = [m.id for m in messages]
    assert all(ids) and len(set(ids)) == len(ids)


def test_resume_from_any_id_gives_the_rest_exactly(client: TestClient, context: Context) -> None:
    user = create_user(client)
    job_id = new_job(context, user["user_id"], 3)
    drive(context, job_id, 3, final=JobStatus.FAILED)
    full = read(client, user, job_id)
    assert full[-1].data == {
        "status": "failed",
        "model_id": None,
        "error": {"error_type": "Boom", "message": "it broke", "details": None},
        "progress": full[-1].data["progress"],
    }
    for i, message in enumerate(full[:-1]):
        rest = read(client, user, job_id, last_id=message.id)
        assert [(m.event, m.data) for m in rest] == [(m.event, m.data) for m in full[i + 1 :]], i
    # "0-R": a client holding rounds up to R (from /history) gets every event, later rounds
    later = read(client, user, job_id, last_id="0-2")
    assert shape(later) == [s for s in shape(full) if s[0] != "progress" or s[1] > 2]
    # reconnecting after the end repeats only the final status
    again = read(client, user, job_id, last_id=full[-1].id)
    assert [(m.event, m.data) for m in again] == [(full[-1].event, full[-1].data)]


def test_live_stream_follows_the_job_to_its_end(client: TestClient, context: Context) -> None:
    user = create_user(client)
    job_id = new_job(context, user["user_id"], 6)
    loading = threading.Event()

    def seen(message: StreamMessage) -> None:
        if message.event == "progress" and message.data.get("message") == "loading data":
            loading.set()

    writer = threading.Thread(
        target=drive, args=(context, job_id, 6), kwargs={"pause": 0.1, "loading": loading}
    )
    writer.start()
    try:
        messages = read(client, user, job_id, seen=seen)
    finally:
        writer.join()
    assert shape(messages) == [
        *FINISHED[:4],
        *[("progress", r) for r in range(1, 7)],
        ("event", "succeeded"),
        ("status", "succeeded"),
    ]
    snapshots = [m.data for m in messages if m.event == "progress" and m.data["round"] is None]
    assert snapshots and snapshots[0]["message"] == "loading data"


def test_a_stream_cut_short_resumes_without_gaps(settings: Settings, context: Context) -> None:
    short = settings.model_copy(update={"stream_max_s": 0.3, "stream_poll_s": 0.05})
    with TestClient(create_app(short, replace(context, settings=short))) as client:
        user = create_user(client)
        job_id = new_job(context, user["user_id"], 8)
        writer = threading.Thread(target=drive, args=(context, job_id, 8), kwargs={"pause": 0.15})
        writer.start()
        try:
            got: list[StreamMessage] = []
            connections = 0
            while not (got and got[-1].is_final_status):
                connections += 1
                got += read(client, user, job_id, got[-1].id if got else None)
        finally:
            writer.join()
    assert connections > 1
    assert shape(got) == [
        *FINISHED[:4],
        *[("progress", r) for r in range(1, 9)],
        ("event", "succeeded"),
        ("status", "succeeded"),
    ]


def test_the_wire_has_a_retry_hint_and_keep_alives_on_a_quiet_stream(
    settings: Settings, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "KEEPALIVE_S", 0.1)
    short = settings.model_copy(update={"stream_max_s": 0.6, "stream_poll_s": 0.05})
    with TestClient(create_app(short, replace(context, settings=short))) as client:
        user = create_user(client)
        job_id = new_job(context, user["user_id"], 3)  # stays queued: a quiet stream
        started = time.monotonic()
        body = client.get(f"/jobs/{job_id}/stream", headers=auth(user)).text
    assert time.monotonic() - started < 5  # it ended, at stream_max_s
    assert "\r" not in body  # lines end in LF: the dashboard's reader splits on "\n\n"
    frames = [f for f in body.split("\n\n") if f]
    assert frames[0] == "retry: 1000"  # a browser's EventSource reconnects after 1 s
    assert [f.split("\n")[1] for f in frames[1:3]] == ["event: event", "event: status"]
    assert any(f.startswith(":") for f in frames[3:])  # comments keep proxies open


def test_stream_and_history_are_owner_only(client: TestClient, context: Context) -> None:
    alice, bob = create_user(client), create_user(client, "bob")
    job_id = new_job(context, alice["user_id"], 2)
    for path in (f"/jobs/{job_id}/stream", f"/jobs/{job_id}/history", "/jobs/nope/stream"):
        response = client.get(path, headers=auth(bob))
        assert response.status_code == 404, path
        assert response.json()["error"] == "job_not_found"
    assert client.get(f"/jobs/{job_id}/stream").status_code == 401
    bad = client.get(f"/jobs/{job_id}/stream", headers=auth(alice) | {"Last-Event-ID": "x"})
    assert bad.status_code == 422


def test_history_is_downsampled_keeping_first_and_last(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    job_id = new_job(context, user["user_id"], 101)
    drive(context, job_id, 101)
    full = client.get(f"/jobs/{job_id}/history", headers=auth(user)).json()
    assert full["total_points"] == 101 and len(full["points"]) == 101
    assert full["metrics"] == ["train-logloss", "validation-logloss"]
    small = client.get(f"/jobs/{job_id}/history?max_points=11", headers=auth(user)).json()
    assert [p["round"] for p in small["points"]] == list(range(1, 102, 10))
    assert small["total_points"] == 101
    assert client.get(f"/jobs/{job_id}/history?max_points=1", headers=auth(user)).status_code == 422


@pytest.mark.parametrize(("n", "k"), [(0, 5), (3, 5), (10, 2), (10, 3), (1000, 7), (7, 6)])
def test_downsample_is_even_and_keeps_the_ends(n: int, k: int) -> None:
    points = list(range(n))
    out = downsample(points, k)
    assert len(out) == min(n, k)
    assert out == sorted(set(out))
    if n:
        assert out[0] == 0 and out[-1] == n - 1


def test_stream_of_a_real_training_job(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(300)).json()["dataset_id"]
    job_id = client.post(
        "/train",
        headers=auth(user),
        json={
            "model_name": "live",
            "dataset_id": dataset_id,
            "task_type": "classification",
            "target": "label",
            "num_boost_round": 25,
        },
    ).json()["job_id"]
    messages = read(client, user, job_id)
    events = [m.data["event"] for m in messages if m.event == "event"]
    assert events == ["submitted", "started", "succeeded"]
    rounds = [m.data["round"] for m in messages if m.event == "progress" and m.data["round"]]
    assert rounds == list(range(1, 26))
    last_round = next(m for m in reversed(messages) if m.event == "progress")
    assert {"train-logloss", "validation-logloss"} <= set(last_round.data["metrics"])
    assert messages[-1].is_final_status and messages[-1].data["status"] == "succeeded"
    assert messages[-1].data["model_id"]


def test_a_revoked_key_loses_its_open_stream(
    settings: Settings, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "KEY_RECHECK_S", 0.2)
    # The stream would run for a minute on a quiet (queued) job.
    quiet = settings.model_copy(update={"stream_max_s": 60.0, "stream_poll_s": 0.05})
    with TestClient(create_app(quiet, replace(context, settings=quiet))) as client:
        user = create_user(client)
        job_id = new_job(context, user["user_id"], 3)
        key_id = client.get("/users/me/keys", headers=auth(user)).json()[0]["key_id"]
        revoker = threading.Timer(
            0.5, lambda: client.delete(f"/users/me/keys/{key_id}", headers=auth(user))
        )
        started = time.monotonic()
        revoker.start()
        body = client.get(f"/jobs/{job_id}/stream", headers=auth(user)).text
        revoker.join()
    assert time.monotonic() - started < 10, "the stream outlived its key by seconds"
    assert "event: status" in body  # it was served until the key went
    assert client.get(f"/jobs/{job_id}", headers=auth(user)).status_code == 401
