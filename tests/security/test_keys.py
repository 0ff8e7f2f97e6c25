"""API keys at rest and on revocation (OWASP API2): no plaintext key anywhere the service
writes, a revoked key refused at once by every API process, a bounded number of keys.

Creating, listing and revoking keys is covered in tests/api/test_users.py; this file holds
what an attacker with a copy of the database, or of one old key, could try.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select, text

from tests.support import auth, create_user
from tests.support.services import make_settings
from xgenerator.api.app import create_app
from xgenerator.context import Context, build_context
from xgenerator.ops.broker import redis_client
from xgenerator.settings import Settings


@pytest.fixture
def api_pair(
    tmp_path: Path, database_url: str, broker_url: str
) -> Iterator[tuple[TestClient, TestClient, Context]]:
    """Two API processes on one database and broker, rate limits on (their counters are
    written to Redis, which the dump below also reads)."""
    settings = make_settings(
        tmp_path, database_url, broker_url, rate_limit_enabled=True, max_keys_per_user=3
    )
    first, second = build_context(settings), build_context(settings)
    try:
        with (
            TestClient(create_app(settings, first)) as one,
            TestClient(create_app(settings, second)) as two,
        ):
            yield one, two, first
    finally:
        first.close()
        second.close()


def dump_database(context: Context) -> str:
    """Every column of every row of every table (reflected, so new tables are included),
    as text: what a stolen backup would hold."""
    engine = context.db.engine
    metadata = MetaData()
    metadata.reflect(engine)
    cells: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                cells.extend(repr(value) for value in row)
    assert len(cells) > 20
    return "\n".join(cells)


def dump_redis(settings: Settings) -> bytes:
    client = redis_client(str(settings.broker_url))
    try:
        parts: list[bytes | str] = []
        for key in client.scan_iter():
            parts.append(key)
            kind = client.type(key)
            if kind == b"string":
                parts.append(client.get(key) or b"")
            elif kind == b"list":
                parts.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    parts += [field, value]
        return b"\n".join(p if isinstance(p, bytes) else p.encode() for p in parts)
    finally:
        client.close()


def test_no_plaintext_key_in_the_database_the_broker_or_the_files(
    api_pair: tuple[TestClient, TestClient, Context],
) -> None:
    one, two, context = api_pair
    alice = create_user(one, "alice")
    extra = one.post("/users/me/keys", headers=auth(alice), json={"name": "ci"}).json()["api_key"]
    revoked = one.post("/users/me/keys", headers=auth(alice), json={}).json()
    keys = [alice["X-API-Key"], extra, revoked["api_key"]]
    for key in keys:  # every key used, through both processes, rate-limited reads included
        assert one.get("/jobs", headers={"X-API-Key": key}).status_code == 200
        assert two.post("/jobs/noop", headers={"X-API-Key": key}).status_code == 202
    assert one.delete(f"/users/me/keys/{revoked['key_id']}", headers=auth(alice)).status_code == 204
    # wrong secrets under a real prefix must not be stored either
    forged = keys[0].rsplit("_", 1)[0] + "_forgedsecret"
    assert one.get("/jobs", headers={"X-API-Key": forged}).status_code == 401

    secrets = [key.split("_", 2)[2] for key in keys] + ["forgedsecret"]
    dumped = dump_database(context)
    if context.db.engine.dialect.name == "postgresql":
        with context.db.engine.connect() as conn:  # the same rows as PostgreSQL prints them
            dumped += "\n".join(
                str(row[0])
                for table in ("users", "api_keys", "jobs", "job_events")
                for row in conn.execute(text(f"SELECT t::text FROM {table} t"))  # noqa: S608
            )
    blobs = [dumped.encode(), dump_redis(context.settings)]
    data_dir = Path(context.settings.data_dir)
    blobs += [p.read_bytes() for p in data_dir.rglob("*") if p.is_file()]  # SQLite + WAL too
    blobs += [p.read_bytes() for p in Path(context.store.root).rglob("*") if p.is_file()]
    for secret in secrets:
        assert not any(secret.encode() in blob for blob in blobs), "a key secret is stored"
    # what is stored: the public prefixes (so the dump is not vacuous)
    assert all(key.split("_")[1] in dumped for key in keys)


def test_a_revoked_key_is_refused_at_once_by_every_api_process(
    api_pair: tuple[TestClient, TestClient, Context],
) -> None:
    one, two, _ = api_pair
    alice = create_user(one, "alice")
    spare = one.post("/users/me/keys", headers=auth(alice), json={"name": "laptop"}).json()
    old = {"X-API-Key": spare["api_key"]}
    assert two.get("/users/me", headers=old).status_code == 200  # process two has used it
    assert one.delete(f"/users/me/keys/{spare['key_id']}", headers=auth(alice)).status_code == 204
    # the very next request, on the other process: no cache keeps the key alive
    for client in (two, one):
        for method, path in (
            ("GET", "/users/me"),
            ("GET", "/users/me/keys"),
            ("POST", "/users/me/keys"),
            ("POST", "/jobs/noop"),
            ("POST", "/models/any/predict"),  # the prediction routes' own key lookup
            ("POST", "/models/any@production/invocations"),
        ):
            response = client.request(method, path, headers=old, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"] == "unauthorized"
    # a revoked key cannot revoke the key that revoked it
    first_key = two.get("/users/me/keys", headers=auth(alice)).json()[0]["key_id"]
    assert two.delete(f"/users/me/keys/{first_key}", headers=old).status_code == 401
    assert two.get("/users/me", headers=auth(alice)).status_code == 200
    listed = two.get("/users/me/keys", headers=auth(alice)).json()
    assert [k["key_id"] for k in listed] == [first_key]
    assert set(listed[0]) == {"key_id", "prefix", "name", "created_at", "last_used_at"}
    again = two.delete(f"/users/me/keys/{spare['key_id']}", headers=auth(alice))
    assert again.status_code == 404


def test_a_user_has_a_bounded_number_of_live_keys(
    api_pair: tuple[TestClient, TestClient, Context],
) -> None:
    """max_keys_per_user=3 here: a leaked key cannot mint keys without end, and the key
    list (not paginated) stays short."""
    one, _, _ = api_pair
    alice = create_user(one, "alice")
    made = [one.post("/users/me/keys", headers=auth(alice), json={}) for _ in range(2)]
    assert [r.status_code for r in made] == [201, 201]
    refused = one.post("/users/me/keys", headers=auth(alice), json={})
    assert refused.status_code == 409
    assert refused.json()["details"] == {"limit": 3}
    revoked = one.delete(f"/users/me/keys/{made[0].json()['key_id']}", headers=auth(alice))
    assert revoked.status_code == 204
    assert one.post("/users/me/keys", headers=auth(alice), json={}).status_code == 201
    # another user has their own budget
    bob = create_user(one, "bob")
    assert one.post("/users/me/keys", headers=auth(bob), json={}).status_code == 201


def test_redis_dump_helper_reads_values(broker_url: str) -> None:
    """The broker dump above is not vacuous: it returns what was written."""
    client = redis.Redis.from_url(broker_url.replace("redis+socket://", "unix://"))
    client.set("probe", b"value-123")
    client.close()
    settings = Settings(broker_url=broker_url)
    assert b"value-123" in dump_redis(settings)
