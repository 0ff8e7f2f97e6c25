"""`GET /jobs` counts matching jobs only up to a limit, so its cost does not grow with them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support import auth, create_user
from xgenerator.context import Context
from xgenerator.db.tables import User
from xgenerator.jobs import repository


def test_total_is_exact_up_to_the_limit_then_a_floor(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "COUNT_LIMIT", 3)
    user = create_user(client)
    ids = [client.post("/jobs/noop", headers=auth(user)).json()["job_id"] for _ in range(3)]
    exact = client.get("/jobs", headers=auth(user)).json()
    assert (exact["total"], exact["total_exact"]) == (3, True)
    ids += [client.post("/jobs/noop", headers=auth(user)).json()["job_id"] for _ in range(2)]
    capped = client.get("/jobs?limit=10", headers=auth(user)).json()
    assert (capped["total"], capped["total_exact"]) == (3, False)
    assert [j["job_id"] for j in capped["jobs"]] == ids[::-1]  # the page itself is complete
    page = client.get("/jobs?limit=2&offset=4", headers=auth(user)).json()
    assert [j["job_id"] for j in page["jobs"]] == [ids[0]]


def test_the_count_follows_the_filters(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository, "COUNT_LIMIT", 3)
    user = create_user(client)
    job_id = client.post("/jobs/noop", headers=auth(user)).json()["job_id"]
    client.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    for _ in range(4):
        client.post("/jobs/noop", headers=auth(user))
    cancelled = client.get("/jobs?status=cancelled", headers=auth(user)).json()
    assert (cancelled["total"], cancelled["total_exact"]) == (1, True)
    queued = client.get("/jobs?status=queued", headers=auth(user)).json()
    assert (queued["total"], queued["total_exact"]) == (3, False)


def test_postgresql_plans_every_query_for_its_own_parameters(context: Context) -> None:
    # A server-side prepared statement would soon run PostgreSQL's generic plan, made for an
    # average user_id: with skewed users it counted a small user's jobs by a full table scan.
    if not context.db.url.startswith("postgresql"):
        pytest.skip("prepared statements are a PostgreSQL matter")
    user = create_user_row(context)
    with context.db.session() as session:
        for _ in range(10):  # psycopg prepares a statement on its 5th execution by default
            repository.list_owned(session, user)
        prepared = session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    assert prepared == 0


def create_user_row(context: Context) -> str:
    with context.db.session() as session:
        user = User(username="carol", email="carol@example.com")
        session.add(user)
        session.flush()
        return user.id
