"""Rate limits and quotas, in both modes: the private Redis of embedded mode, and the shared
Redis on 127.0.0.1:6379 of Redis mode (where several API processes share the counters)."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from fastapi import Request, Response
from limits.storage import MemoryStorage
from sqlalchemy import func, select

from tests.support import auth, classification_frame, create_user, upload, wait_for
from tests.support.services import ADMIN, Service, ServiceFactory
from xgenerator.api import rate_limit
from xgenerator.api.rate_limit import RateLimiter, Rule, rule_for
from xgenerator.db.tables import Job, User
from xgenerator.errors import QuotaExceeded, RateLimited
from xgenerator.jobs import service
from xgenerator.ops.broker import redis_client
from xgenerator.settings import Settings


@pytest.fixture(params=["embedded", "redis"])
def limited(request: pytest.FixtureRequest, service: ServiceFactory) -> ServiceFactory:
    """Services with rate limits on, on the private Redis or on the shared one."""
    broker = None if request.param == "embedded" else request.getfixturevalue("shared_redis_url")

    def make(**extra: Any) -> Service:
        extra.setdefault("rate_limit_enabled", True)
        return service(broker=broker, **extra)

    return make


def train_body(dataset_id: str, **extra: object) -> dict[str, object]:
    return {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 5,
        **extra,
    }


def with_dataset(svc: Service, name: str = "alice") -> tuple[dict[str, str], str]:
    user = create_user(svc.client, name)
    dataset_id = upload(svc.client, user, classification_frame(60)).json()["dataset_id"]
    return user, dataset_id


def assert_limited(response: httpx2.Response, rule: str, window_s: float = 60) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "rate_limited"
    assert body["details"]["rule"] == rule
    assert 1 <= int(response.headers["Retry-After"]) <= window_s


def noop(svc: Service, user_id: str) -> str:
    job = Job(user_id=user_id, job_type="noop", queue="train", config={})
    return service.enqueue(svc.context, job).job.id


def test_train_is_limited_per_key_across_api_processes(limited: ServiceFactory) -> None:
    first = limited(max_active_jobs_per_user=0)
    second = limited(max_active_jobs_per_user=0)  # another API process, same broker
    alice, dataset_id = with_dataset(first)
    bob, bob_dataset = with_dataset(first, "bob")
    answers = [
        first.client.post("/train", headers=auth(alice), json=train_body(dataset_id)),
        second.client.post("/train", headers=auth(alice), json=train_body(dataset_id)),
        first.client.post("/train", headers=auth(alice), json=train_body(dataset_id)),
    ]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert_limited(
        second.client.post("/train", headers=auth(alice), json=train_body(dataset_id)), "train"
    )
    # the refused request created nothing; another key has its own budget
    with first.context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 3
    assert (
        first.client.post("/train", headers=auth(bob), json=train_body(bob_dataset)).status_code
        == 202
    )
    # reads are a separate budget
    assert first.client.get("/jobs", headers=auth(alice)).status_code == 200


def test_reads_are_limited_and_the_window_passes(limited: ServiceFactory) -> None:
    svc = limited(rate_limit_read=5, rate_limit_window_s=1.0)
    alice = create_user(svc.client)
    for _ in range(5):
        assert svc.client.get("/jobs", headers=auth(alice)).status_code == 200
    assert_limited(svc.client.get("/datasets", headers=auth(alice)), "read", window_s=1)
    for _ in range(10):  # liveness is never limited
        assert svc.client.get("/health", headers=auth(alice)).status_code == 200
    wait_for(
        lambda: svc.client.get("/jobs", headers=auth(alice)).status_code == 200,
        5,
        0.2,
        "the next window",
    )


def test_deletes_are_limited(limited: ServiceFactory) -> None:
    svc = limited(rate_limit_delete=2, max_active_jobs_per_user=0)
    alice = create_user(svc.client)
    jobs = [noop(svc, alice["user_id"]) for _ in range(3)]
    for job_id in jobs[:2]:
        assert svc.client.delete(f"/jobs/{job_id}", headers=auth(alice)).status_code == 200
    assert_limited(svc.client.delete(f"/jobs/{jobs[2]}", headers=auth(alice)), "delete")
    assert svc.client.get(f"/jobs/{jobs[2]}", headers=auth(alice)).json()["status"] == "queued"


def test_sign_up_is_limited_per_client_address(limited: ServiceFactory) -> None:
    first = limited(rate_limit_signup=2)
    second = limited(rate_limit_signup=2)  # another API process: the counter is shared
    created = [create_user(first.client, "user1"), create_user(second.client, "user2")]
    answer = first.client.post("/users", json={"username": "user3", "email": "user3@example.com"})
    assert_limited(answer, "signup")
    # the users created still work; their own requests spend their keys' budgets
    assert all(first.client.get("/users/me", headers=auth(u)).status_code == 200 for u in created)
    with first.context.db.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2


def test_a_wrong_secret_does_not_spend_the_owners_budget(limited: ServiceFactory) -> None:
    svc = limited(rate_limit_read=3)
    alice = create_user(svc.client)
    forged = {"X-API-Key": alice["X-API-Key"][:-4] + "xxxx"}  # right prefix, wrong secret
    for _ in range(5):
        assert svc.client.get("/jobs", headers=forged).status_code in (401, 429)
    assert svc.client.get("/jobs", headers=auth(alice)).status_code == 200


def test_rate_limits_can_be_turned_off(limited: ServiceFactory) -> None:
    svc = limited(rate_limit_enabled=False, rate_limit_read=2, max_active_jobs_per_user=0)
    alice, dataset_id = with_dataset(svc)
    for _ in range(5):
        assert (
            svc.client.post("/train", headers=auth(alice), json=train_body(dataset_id)).status_code
            == 202
        )
        assert svc.client.get("/jobs", headers=auth(alice)).status_code == 200


def test_active_job_quota(limited: ServiceFactory) -> None:
    svc = limited(max_active_jobs_per_user=2, rate_limit_train=100)
    alice, dataset_id = with_dataset(svc)
    bob, bob_dataset = with_dataset(svc, "bob")
    first = svc.client.post(
        "/train", headers=auth(alice) | {"Idempotency-Key": "one"}, json=train_body(dataset_id)
    )
    second = svc.client.post("/train", headers=auth(alice), json=train_body(dataset_id))
    assert (first.status_code, second.status_code) == (202, 202)
    refused = svc.client.post("/train", headers=auth(alice), json=train_body(dataset_id))
    assert refused.status_code == 429
    assert refused.json()["error"] == "quota_exceeded"
    assert refused.json()["details"] == {"active_jobs": 2, "limit": 2}
    assert int(refused.headers["Retry-After"]) > 0
    # a replay of an existing job is not a new job
    replay = svc.client.post(
        "/train", headers=auth(alice) | {"Idempotency-Key": "one"}, json=train_body(dataset_id)
    )
    assert replay.status_code == 200
    # other users are not affected, and a finished job frees a slot
    assert (
        svc.client.post("/train", headers=auth(bob), json=train_body(bob_dataset)).status_code
        == 202
    )
    svc.client.delete(f"/jobs/{first.json()['job_id']}", headers=auth(alice))
    assert (
        svc.client.post("/train", headers=auth(alice), json=train_body(dataset_id)).status_code
        == 202
    )


def test_quota_holds_under_concurrent_submissions(limited: ServiceFactory) -> None:
    svc = limited(max_active_jobs_per_user=2)
    alice = create_user(svc.client)
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            noop(svc, alice["user_id"])
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["created"] * 2 + ["refused"] * 3


def test_dataset_shape_limits(limited: ServiceFactory) -> None:
    svc = limited(max_dataset_rows=50, max_dataset_columns=3)
    alice = create_user(svc.client)
    frame = classification_frame(60)  # 60 rows, 4 columns
    too_wide = upload(svc.client, alice, frame.head(10))
    assert too_wide.status_code == 422
    assert too_wide.json()["details"]["reason"] == "too_many_columns"
    too_long = upload(svc.client, alice, frame[["x1", "x2", "label"]])
    assert too_long.status_code == 422
    assert too_long.json()["details"] == {"reason": "too_many_rows", "limit": 50, "rows": 60}
    fits = upload(svc.client, alice, frame[["x1", "x2", "label"]].head(50))
    assert fits.status_code == 201, fits.text


def test_training_ceilings(limited: ServiceFactory) -> None:
    svc = limited(
        max_num_boost_round=10, max_depth_limit=4, rate_limit_train=100, max_active_jobs_per_user=0
    )
    alice, dataset_id = with_dataset(svc)

    def train(**extra: object) -> httpx2.Response:
        return svc.client.post("/train", headers=auth(alice), json=train_body(dataset_id, **extra))

    rounds = train(num_boost_round=11)
    assert rounds.status_code == 422 and rounds.json()["details"] == {"limit": 10}
    depth = train(xgb_params={"max_depth": 5})
    assert depth.status_code == 422 and "max_depth" in depth.text
    assert train(num_boost_round=10, xgb_params={"max_depth": 4}).status_code == 202


def test_which_rule_a_request_spends() -> None:
    settings = Settings(rate_limit_train=3, rate_limit_read=120, rate_limit_delete=30)
    assert rule_for(settings, "POST", "/train") == Rule("train", 3)
    assert rule_for(settings, "POST", "/models/{model_id}/retrain") == Rule("train", 3)
    assert rule_for(settings, "POST", "/cv") == Rule("train", 3)  # k trainings at once
    assert rule_for(settings, "DELETE", "/jobs/{job_id}") == Rule("delete", 30)
    assert rule_for(settings, "GET", "/jobs/{job_id}") == Rule("read", 120)
    assert rule_for(settings, "POST", "/users") == Rule("signup", settings.rate_limit_signup)
    assert rule_for(settings, "GET", "/status") is None
    assert rule_for(settings, "POST", "/datasets") == Rule("upload", settings.rate_limit_upload)
    assert rule_for(settings, "POST", "/models/{model_id}/predict") == Rule(
        "predict", settings.rate_limit_predict
    )
    assert rule_for(settings, "POST", "/users/me/keys") == Rule("write", settings.rate_limit_write)


def test_every_route_spends_a_budget(limited: ServiceFactory) -> None:
    svc = limited()
    spec = svc.client.app.openapi()  # type: ignore[attr-defined]
    unlimited = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if rule_for(svc.settings, method.upper(), path) is None
    ]
    assert sorted(unlimited) == ["GET /health", "GET /metrics", "GET /status"]


def test_a_second_key_is_no_second_allowance(limited: ServiceFactory) -> None:
    svc = limited(rate_limit_train=2)
    alice, dataset_id = with_dataset(svc)
    second = svc.client.post("/users/me/keys", headers=auth(alice), json={"name": "two"})
    assert second.status_code == 201, second.text
    other_key = {"X-API-Key": second.json()["api_key"]}
    body = train_body(dataset_id)
    assert svc.client.post("/train", headers=auth(alice), json=body).status_code == 202
    assert svc.client.post("/train", headers=other_key, json=body).status_code == 202
    assert_limited(svc.client.post("/train", headers=other_key, json=body), "train")
    assert_limited(svc.client.post("/train", headers=auth(alice), json=body), "train")


def test_admin_key_guessing_is_throttled_per_address(limited: ServiceFactory) -> None:
    svc = limited(rate_limit_admin_failures=3)
    for _ in range(3):
        assert svc.client.get("/status", headers={"X-Admin-Key": "guess"}).status_code == 401
    # Past the failures allowed in a window even the right key waits: guessing is slowed.
    assert_limited(svc.client.get("/status", headers=ADMIN), "admin_failures")


def limit_check(limiter: RateLimiter, key: str) -> Response:
    """One GET /jobs through the limiter, as the user dependency sees it (`key`: the user)."""
    route = SimpleNamespace(path="/jobs")
    scope = {"type": "http", "method": "GET", "path": "/jobs", "route": route}
    request = Request(scope | {"headers": []})
    response = Response()
    limiter.charge_user(request, response.headers, key)
    return response


def test_memory_counts_for_an_app_without_broker() -> None:
    one_second = Settings(rate_limit_enabled=True, rate_limit_read=3, rate_limit_window_s=1)
    limiter = RateLimiter(one_second, MemoryStorage(wrap_exceptions=True))
    left = [limit_check(limiter, "k").headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert left == ["2", "1", "0"]
    assert limit_check(limiter, "other").headers["X-RateLimit-Remaining"] == "2"
    with pytest.raises(RateLimited) as refused:
        limit_check(limiter, "k")
    assert refused.value.retry_after == 1

    def next_window() -> bool:
        try:
            return limit_check(limiter, "k").headers["X-RateLimit-Remaining"] == "2"
        except RateLimited:
            return False

    wait_for(next_window, 5, 0.1, "the next window")


def test_an_unreachable_redis_lets_requests_through_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    on = Settings(rate_limit_enabled=True, rate_limit_read=1)
    dead = redis_client("redis://127.0.0.1:1/0", timeout=0.5)  # nothing listens on port 1
    context = SimpleNamespace(redis=dead)  # all `storage` reads of a Context
    limiter = RateLimiter(on, rate_limit.storage(context))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "xgenerator.api.rate_limit"):
        for _ in range(3):  # past the limit of 1, and still let through
            assert "X-RateLimit-Remaining" not in limit_check(limiter, "k").headers
    assert "Redis unavailable" in caplog.text
