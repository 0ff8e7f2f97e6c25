from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support import auth, create_user
from xgenerator.context import Context
from xgenerator.db.tables import ApiKey


def test_create_user_returns_a_key_once_and_stores_only_its_hash(
    client: TestClient, context: Context
) -> None:
    response = client.post("/users", json={"username": "alice", "email": "alice@example.com"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user_id", "username", "email", "api_key", "created_at"}
    key = body["api_key"]
    with context.db.session() as session:
        rows = session.scalars(select(ApiKey)).all()
    assert len(rows) == 1
    stored = " ".join(str(getattr(rows[0], c)) for c in ("prefix", "secret_hash", "name"))
    secret = key.split("_", 2)[2]
    assert secret not in stored and key not in stored
    assert rows[0].secret_hash != secret

    me = client.get("/users/me", headers={"X-API-Key": key})
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert "api_key" not in me.json()


def test_duplicate_username_is_409(client: TestClient) -> None:
    create_user(client, "bob")
    again = client.post("/users", json={"username": "bob", "email": "other@example.com"})
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"


def test_missing_malformed_and_wrong_keys_are_401(client: TestClient) -> None:
    user = create_user(client)
    prefix = user["X-API-Key"].split("_")[1]
    for headers in (
        {},
        {"X-API-Key": "nonsense"},
        {"X-API-Key": f"xg_{prefix}_wrongsecret"},
        {"X-API-Key": "xg_0000000000000000_secret"},
    ):
        response = client.get("/users/me", headers=headers)
        assert response.status_code == 401, headers
        assert set(response.json()) == {"error", "message", "details"}
        assert response.json()["error"] == "unauthorized"


def test_invalid_user_body_is_422_in_the_error_shape(client: TestClient) -> None:
    response = client.post(
        "/users", json={"username": "x", "email": "not-an-email", "is_admin": True}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    fields = {e["field"] for e in body["details"]["errors"]}
    assert {"body.username", "body.email", "body.is_admin"} <= fields


def test_keys_can_be_added_listed_and_revoked(client: TestClient) -> None:
    user = create_user(client)
    created = client.post("/users/me/keys", headers=auth(user), json={"name": "ci"})
    assert created.status_code == 201
    second = {"X-API-Key": created.json()["api_key"]}
    assert client.get("/users/me", headers=second).status_code == 200

    listed = client.get("/users/me/keys", headers=auth(user)).json()
    assert len(listed) == 2
    assert all("api_key" not in k and "secret_hash" not in k for k in listed)

    revoked = client.delete(f"/users/me/keys/{created.json()['key_id']}", headers=auth(user))
    assert revoked.status_code == 204
    assert client.get("/users/me", headers=second).status_code == 401
    assert client.get("/users/me", headers=auth(user)).status_code == 200


def test_another_users_key_cannot_be_revoked(client: TestClient) -> None:
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    alice_keys = client.get("/users/me/keys", headers=auth(alice)).json()
    response = client.delete(f"/users/me/keys/{alice_keys[0]['key_id']}", headers=auth(bob))
    assert response.status_code == 404
    assert client.get("/users/me", headers=auth(alice)).status_code == 200


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"


def test_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "message", "details"}


def test_a_key_records_when_it_was_last_used(client: TestClient) -> None:
    user = create_user(client)
    [before] = client.get("/users/me/keys", headers=auth(user)).json()
    assert client.get("/users/me", headers=auth(user)).status_code == 200
    [after] = client.get("/users/me/keys", headers=auth(user)).json()
    assert after["last_used_at"] is not None
    assert after["last_used_at"] >= after["created_at"]
    assert before["key_id"] == after["key_id"]
