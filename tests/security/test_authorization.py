"""Object-level authorization over every route in the OpenAPI spec (OWASP API1, API2, API5).

Bob calls every route that takes a path parameter with Alice's ids: 404 everywhere, in the
error shape, and afterwards nothing of hers (no row, no file) has changed. Lists never show
him her objects. Every route outside an explicit allow-list refuses a request without a key.
The routes are read from `app.openapi()`: a new route is attacked as soon as it exists, and
one whose path parameters or body this file cannot fill fails it until it is covered here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.security import spec as openapi
from tests.security.calls import BODIES, PATH_VALUES, calls, no_body, owner_url
from tests.security.spec import SQLITE_ONLY, Operation
from tests.security.world import World, build, snapshot
from xgenerator.api.app import create_app
from xgenerator.context import Context
from xgenerator.db.tables import ApiKey, Dataset, JobArtifact, Model
from xgenerator.settings import Settings


def uncovered(spec: dict[str, Any]) -> list[str]:
    """Routes this file does not know how to call: each is a new route without coverage."""
    problems = []
    for op in openapi.operations(spec):
        if op.public:
            continue
        unknown = [p for p in op.path_params if p not in PATH_VALUES]
        if unknown:
            problems.append(f"{op}: no value for path parameter(s) {unknown}")
        if op.has_body and (op.method, op.path) not in BODIES and op.path != "/datasets":
            problems.append(f"{op}: no body to send")
    return problems


def send(
    client: TestClient, op: Operation, url: str, headers: dict[str, str], body: dict[str, Any]
) -> httpx2.Response:
    kwargs: dict[str, Any] = {"headers": headers}
    if op.has_body:
        kwargs["json"] = body
    return client.request(op.method, url, **kwargs)


def assert_error_shape(response: httpx2.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "details"}, body
    return body


def internals(context: Context) -> list[str]:
    """Strings no response may contain: storage keys, key hashes, the store's location."""
    with context.db.session() as session:
        found = [context.store.root, "Traceback"]
        for column in (
            Dataset.storage_key,
            Model.storage_key,
            JobArtifact.storage_key,
            ApiKey.secret_hash,
        ):
            found += list(session.scalars(select(column)))
    return found


@pytest.fixture
def world(client: TestClient, context: Context) -> World:
    return build(client, context)


@SQLITE_ONLY
def test_every_route_is_covered(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    spec = app.openapi()
    assert uncovered(spec) == [], "new route without authorization coverage"
    assert openapi.unlisted_routes(app, spec) == [], "route hidden from the spec, not allowed"


@SQLITE_ONLY
def test_a_new_route_without_coverage_fails_the_check(settings: Settings, context: Context) -> None:
    app = create_app(settings, context)

    @app.get("/widgets/{widget_id}")
    def widget(widget_id: str) -> dict[str, str]:
        return {"widget_id": widget_id}

    @app.get("/hidden/{thing}", include_in_schema=False)
    def hidden(thing: str) -> dict[str, str]:
        return {"thing": thing}

    spec = app.openapi()
    assert uncovered(spec) == [
        "GET /widgets/{widget_id}: no value for path parameter(s) ['widget_id']"
    ]
    assert openapi.unlisted_routes(app, spec) == ["/hidden/{thing}"]


def test_another_users_ids_are_404_on_every_route_and_change_nothing(
    client: TestClient, context: Context, world: World
) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    targets = [op for op in openapi.operations(spec) if op.path_params and not op.public]
    assert len(targets) >= 20  # the spec really was read
    before = snapshot(context)
    bob = {"X-API-Key": world.bob["X-API-Key"]}
    hidden = internals(context)
    tried = 0
    for op in targets:
        body = BODIES[(op.method, op.path)](world, world.bob_dataset_id) if op.has_body else {}
        for url in calls(op, world):
            response = send(client, op, url, bob, body)
            assert response.status_code == 404, (str(op), url, response.text)
            error = assert_error_shape(response)
            assert error["error"].endswith("not_found"), (str(op), error)
            assert not any(secret in response.text for secret in hidden), (str(op), response.text)
            tried += 1
    assert snapshot(context) == before, "another user's request changed Alice's objects"

    # Control: the same calls by Alice reach her objects, so Bob's 404s were about ownership.
    # Reads first, then writes, deletes last (a deleted model has no download).
    order = {"GET": 0, "PUT": 1, "POST": 1, "DELETE": 2}
    alice = {"X-API-Key": world.alice["X-API-Key"]}
    for op in sorted(targets, key=lambda o: order[o.method]):
        body = BODIES[(op.method, op.path)](world, world.ids["dataset_id"]) if op.has_body else {}
        response = send(client, op, owner_url(op, world), alice, body)
        assert response.status_code != 404, (str(op), response.text)
        assert response.status_code < 500, (str(op), response.text)
        assert not any(secret in response.text for secret in hidden), (str(op), response.text)
    assert tried >= len(targets)


def test_lists_never_show_another_users_objects(
    client: TestClient, context: Context, world: World
) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    lists = [
        op
        for op in openapi.operations(spec)
        if op.method == "GET" and not op.path_params and not op.public
    ]
    assert {"/jobs", "/datasets", "/models", "/users/me/keys"} <= {op.path for op in lists}
    filtered = [
        "/jobs?model_name=alice-model",
        "/jobs?status=succeeded",
        "/jobs?job_type=train",
        "/models?name=alice-model",
    ]
    bob = {"X-API-Key": world.bob["X-API-Key"]}
    alice = {"X-API-Key": world.alice["X-API-Key"]}
    for url in [op.path for op in lists] + filtered:
        seen = client.get(url, headers=bob)
        assert seen.status_code == 200, (url, seen.text)
        leaked = [i for i in world.alice_ids if i in seen.text]
        assert leaked == [], (url, leaked)
        own = client.get(url, headers=alice)
        assert own.status_code == 200 and any(i in own.text for i in world.alice_ids), url


def test_every_route_outside_the_allow_list_needs_a_valid_key(
    client: TestClient, context: Context, world: World
) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    before = snapshot(context)
    prefix = world.alice["X-API-Key"].split("_")[1]
    bad_keys: list[dict[str, str]] = [
        {},
        {"X-API-Key": ""},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": f"xg_{prefix}_wrong"},  # Alice's prefix, wrong secret
    ]
    checked = 0
    for op in openapi.operations(spec):
        if op.public:
            continue
        make_body = BODIES.get((op.method, op.path), no_body)
        body = make_body(world, world.ids["dataset_id"])
        url = owner_url(op, world)
        for headers in bad_keys:
            if op.path == "/datasets" and op.method == "POST":
                response = client.post(
                    url,
                    headers=headers,
                    data={"dataset_name": "x"},
                    files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
                )
            else:
                response = send(client, op, url, headers, body)
            assert response.status_code == 401, (str(op), headers, response.text)
            assert assert_error_shape(response)["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "ApiKey"
            checked += 1
    assert checked > 100
    assert snapshot(context) == before


def test_every_route_outside_the_allow_list_documents_its_key_header(client: TestClient) -> None:
    """Clients generated from the spec send the key: the prediction routes read it by hand
    (api/deps.caller_model) and must still document it."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    keyed = {
        str(op): [
            p
            for p in op.spec.get("parameters", [])
            if p["in"] == "header" and p["name"].lower() == "x-api-key"
        ]
        for op in openapi.operations(spec)
        if not op.public
    }
    assert [op for op, found in keyed.items() if len(found) != 1] == []
    # written once by FastAPI (`CurrentUser`), once by hand (deps.API_KEY_PARAMETER): one shape
    shapes = {json.dumps(found[0], sort_keys=True) for found in keyed.values()}
    assert len(shapes) == 1, shapes


@SQLITE_ONLY
def test_operator_endpoints_refuse_user_keys(client: TestClient, world: World) -> None:
    """/status and /metrics show every user's job counts: a user key never opens them."""
    for path in ("/status", "/metrics"):
        for headers in ({}, {"X-API-Key": world.alice["X-API-Key"]}):
            response = client.get(path, headers=headers)
            assert response.status_code in (401, 403), (path, response.text)
            assert_error_shape(response)
