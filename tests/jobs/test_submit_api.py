"""Submitting, listing, cancelling and deleting jobs through the API, without a worker:
what must hold before any training happens."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import auth, classification_frame, create_user, upload
from tests.support.jobs import job_count
from xgenerator.context import Context


def train_body(dataset_id: str, **extra: object) -> dict[str, object]:
    return {
        "model_name": "m",
        "dataset_id": dataset_id,
        "task_type": "classification",
        "target": "label",
        "num_boost_round": 5,
        **extra,
    }


def setup_dataset(client: TestClient) -> tuple[dict[str, str], str]:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(60)).json()["dataset_id"]
    return user, dataset_id


def test_train_answers_202_with_a_queued_job(client: TestClient, context: Context) -> None:
    user, dataset_id = setup_dataset(client)
    response = client.post("/train", headers=auth(user), json=train_body(dataset_id))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["Location"] == f"/jobs/{body['job_id']}"
    job = client.get(f"/jobs/{body['job_id']}", headers=auth(user)).json()
    assert job["status"] == "queued"
    assert job["config"]["features"] == ["x1", "x2", "color"]
    assert "celery_task_id" not in job and "train_config" not in job
    assert job["attempts"] == 0
    events = client.get(f"/jobs/{body['job_id']}/events", headers=auth(user)).json()["events"]
    assert [e["event"] for e in events] == ["submitted"]


def test_unknown_dataset_is_404_and_creates_no_job(client: TestClient, context: Context) -> None:
    user = create_user(client)
    response = client.post("/train", headers=auth(user), json=train_body("nope"))
    assert response.status_code == 404
    assert response.json()["error"] == "dataset_not_found"
    assert job_count(context) == 0


def test_another_users_dataset_is_404_for_training(client: TestClient, context: Context) -> None:
    _, dataset_id = setup_dataset(client)
    bob = create_user(client, "bob")
    assert client.post("/train", headers=auth(bob), json=train_body(dataset_id)).status_code == 404
    assert job_count(context) == 0


def test_bad_training_requests_are_422_and_create_no_job(
    client: TestClient, context: Context
) -> None:
    user, dataset_id = setup_dataset(client)
    bad = [
        train_body(dataset_id, target="nope"),
        train_body(dataset_id, features=["x1", "missing"]),
        train_body(dataset_id, features=["x1", "label"]),
        train_body(dataset_id, task_type="clustering"),
        train_body(dataset_id, xgb_params={"max_depth": 500}),
        train_body(dataset_id, xgb_params={"unknown_param": 1}),
        train_body(dataset_id, xgb_params={"eta": "fast"}),
        train_body(dataset_id, num_boost_round=0),
        train_body(dataset_id, num_boost_round=10**9),
        train_body(dataset_id, task_type="regression"),  # string target
        train_body(dataset_id, status="succeeded"),  # a field a client may not set
        train_body(dataset_id, eval_every=0),
        # early stopping reads the validation metric every round
        train_body(dataset_id, early_stopping_rounds=5, eval_every=2),
    ]
    for body in bad:
        response = client.post("/train", headers=auth(user), json=body)
        assert response.status_code == 422, (body, response.text)
        assert set(response.json()) == {"error", "message", "details"}
    assert job_count(context) == 0


def test_user_id_in_body_must_be_the_keys_user(client: TestClient) -> None:
    user, dataset_id = setup_dataset(client)
    bob = create_user(client, "bob")
    response = client.post(
        "/train", headers=auth(user), json=train_body(dataset_id, user_id=bob["user_id"])
    )
    assert response.status_code == 403


def test_cancel_a_queued_job_then_409_once_final(client: TestClient) -> None:
    user, dataset_id = setup_dataset(client)
    job_id = client.post("/train", headers=auth(user), json=train_body(dataset_id)).json()["job_id"]
    cancelled = client.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    assert cancelled.status_code == 200
    assert cancelled.json()["previous_status"] == "queued"
    assert client.get(f"/jobs/{job_id}", headers=auth(user)).json()["status"] == "cancelled"
    again = client.post(f"/jobs/{job_id}/cancel", headers=auth(user))
    assert again.status_code == 409
    assert again.json()["details"]["status"] == "cancelled"


def test_delete_queued_cancels_and_delete_final_removes(client: TestClient) -> None:
    user, dataset_id = setup_dataset(client)
    job_id = client.post("/train", headers=auth(user), json=train_body(dataset_id)).json()["job_id"]
    first = client.delete(f"/jobs/{job_id}", headers=auth(user)).json()
    assert first["previous_status"] == "queued" and first["status"] == "cancelled"
    second = client.delete(f"/jobs/{job_id}", headers=auth(user)).json()
    assert second["previous_status"] == "cancelled" and second["status"] == "deleted"
    assert client.get(f"/jobs/{job_id}", headers=auth(user)).status_code == 404


def test_listing_is_own_newest_first_and_filtered(client: TestClient) -> None:
    user, dataset_id = setup_dataset(client)
    bob, bob_dataset = create_user(client, "bob"), None
    bob_dataset = upload(client, bob, classification_frame(30)).json()["dataset_id"]
    client.post("/train", headers=auth(bob), json=train_body(bob_dataset))
    ids = [
        client.post(
            "/train", headers=auth(user), json=train_body(dataset_id, model_name=f"m{i}")
        ).json()["job_id"]
        for i in range(3)
    ]
    client.post(f"/jobs/{ids[0]}/cancel", headers=auth(user))

    listed = client.get("/jobs", headers=auth(user)).json()
    assert listed["total"] == 3
    assert [j["job_id"] for j in listed["jobs"]] == ids[::-1]
    assert all(j["user_id"] == user["user_id"] for j in listed["jobs"])
    assert set(listed["jobs"][0]) >= {
        "job_id",
        "job_type",
        "status",
        "user_id",
        "model_name",
        "created_at",
        "completed_at",
        "model_id",
        "progress",
    }
    queued = client.get("/jobs?status=queued", headers=auth(user)).json()
    assert {j["job_id"] for j in queued["jobs"]} == set(ids[1:])
    named = client.get("/jobs?model_name=m1", headers=auth(user)).json()
    assert [j["job_id"] for j in named["jobs"]] == [ids[1]]
    page = client.get("/jobs?limit=1&offset=1", headers=auth(user)).json()
    assert [j["job_id"] for j in page["jobs"]] == [ids[1]]
    assert client.get("/jobs?limit=101", headers=auth(user)).status_code == 422
    assert client.get("/jobs?status=bogus", headers=auth(user)).status_code == 422


def test_another_users_job_is_404_everywhere(client: TestClient) -> None:
    user, dataset_id = setup_dataset(client)
    bob = create_user(client, "bob")
    job_id = client.post("/train", headers=auth(user), json=train_body(dataset_id)).json()["job_id"]
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/events"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("DELETE", f"/jobs/{job_id}"),
    ]:
        response = client.request(method, path, headers=auth(bob))
        assert response.status_code == 404, (method, path)
        assert response.json()["error"] == "job_not_found"
    assert client.get(f"/jobs/{job_id}", headers=auth(user)).json()["status"] == "queued"
    assert client.get("/jobs", headers=auth(bob)).json()["total"] == 0


def test_idempotency_key_replays_the_same_job(client: TestClient, context: Context) -> None:
    user, dataset_id = setup_dataset(client)
    headers = {**auth(user), "Idempotency-Key": "abc"}
    first = client.post("/train", headers=headers, json=train_body(dataset_id))
    second = client.post("/train", headers=headers, json=train_body(dataset_id))
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["job_id"] == second.json()["job_id"]
    different = client.post("/train", headers=headers, json=train_body(dataset_id, model_name="x"))
    assert different.status_code == 409
    assert job_count(context) == 1


def test_feature_names_xgboost_refuses_are_422_at_submission(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    frame = classification_frame(60).rename(columns={"x1": "x[1]", "x2": "a<b"})
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    response = client.post("/train", headers=auth(user), json=train_body(dataset_id))
    assert response.status_code == 422, response.text
    assert response.json()["details"] == {"columns": ["x[1]", "a<b"]}
    assert job_count(context) == 0
    # Leaving them out is the way through.
    ok = train_body(dataset_id, exclude_features=["x[1]", "a<b"])
    assert client.post("/train", headers=auth(user), json=ok).status_code == 202


def test_a_training_past_the_cost_budget_is_422_at_submission(
    client: TestClient, context: Context
) -> None:
    user = create_user(client)
    dataset_id = upload(client, user, classification_frame(2_000)).json()["dataset_id"]
    # Each parameter within its own bound; together far past the budget.
    body = train_body(
        dataset_id,
        num_boost_round=5_000,
        xgb_params={"max_depth": 16, "num_parallel_tree": 100},
    )
    response = client.post("/train", headers=auth(user), json=body)
    assert response.status_code == 422, response.text
    # a tree has at most one leaf per row: 2,000 here, not 2**16
    assert response.json()["details"]["leaves"] == 5_000 * 100 * 2_000
    assert job_count(context) == 0
