"""Versions under a model name, aliases moved with a recorded history, and model references
(`name@alias`, `name@N`) wherever a model id goes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support import WorkerProcess, auth, classification_frame, create_user, upload
from tests.support.jobs import train_model


def test_versions_aliases_history_and_rollback(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    frame = classification_frame(200)
    dataset_id = upload(client, user, frame).json()["dataset_id"]
    first = train_model(client, user, dataset_id, "classification", "label", rounds=3)
    second = train_model(client, user, dataset_id, "classification", "label", rounds=6)
    name = client.get(f"/models/{first}", headers=auth(user)).json()["name"]
    assert client.get(f"/models/{second}", headers=auth(user)).json()["version"] == 2

    registered = client.get(f"/registered-models/{name}", headers=auth(user)).json()
    assert [(v["version"], v["model_id"]) for v in registered["versions"]] == [
        (2, second),
        (1, first),
    ]
    assert registered["aliases"] == {} and registered["history"] == []

    url = f"/registered-models/{name}/aliases/production"
    moved = client.put(url, headers=auth(user), json={"version": 1})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["from_version"], moved.json()["to_version"]) == (None, 1)
    row = {"x1": 0.5, "x2": 1.0, "color": "red"}

    def served_by(reference: str) -> str:
        response = client.post(
            f"/models/{reference}/predict", headers=auth(user), json={"rows": [row]}
        )
        assert response.status_code == 200, response.text
        model_id: str = response.json()["model_id"]
        return model_id

    assert served_by(f"{name}@production") == first
    # Moving the alias takes effect on the very next request.
    client.put(url, headers=auth(user), json={"version": 2})
    assert served_by(f"{name}@production") == second
    assert served_by(f"{name}@1") == first

    # A version an alias points at cannot be deleted; the alias must move first.
    refused = client.delete(f"/models/{second}", headers=auth(user))
    assert refused.status_code == 409 and refused.json()["details"]["aliases"] == ["production"]

    rolled = client.post(f"{url}/rollback", headers=auth(user)).json()
    assert (rolled["from_version"], rolled["to_version"]) == (2, 1)
    assert served_by(f"{name}@production") == first
    history = client.get(f"/registered-models/{name}", headers=auth(user)).json()["history"]
    assert [(h["from_version"], h["to_version"], h["actor"]) for h in history] == [
        (2, 1, "alice"),
        (1, 2, "alice"),
        (None, 1, "alice"),
    ]
    listed = client.get("/registered-models", headers=auth(user)).json()
    assert [(r["name"], r["latest"]["version"]) for r in listed["registered_models"]] == [(name, 2)]

    # What does not exist, or is not this user's, is a 404 in every form of reference.
    assert client.put(url, headers=auth(user), json={"version": 9}).status_code == 404
    bad_alias = client.put(
        f"/registered-models/{name}/aliases/123", headers=auth(user), json={"version": 1}
    )
    assert bad_alias.status_code == 422
    other = create_user(client, "mallory")
    for reference in (first, f"{name}@production", f"{name}@1"):
        assert client.get(f"/models/{reference}", headers=auth(other)).status_code == 404
    assert client.get(f"/registered-models/{name}", headers=auth(other)).status_code == 404
    assert client.put(url, headers=auth(other), json={"version": 1}).status_code == 404
