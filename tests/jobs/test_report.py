"""Model reports end to end with a real worker (both databases): the HTML parses, holds the
plots and the model's metrics, and without its dataset says what it had to leave out."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import (
    WorkerProcess,
    auth,
    classification_frame,
    create_user,
    regression_frame,
    upload,
)
from tests.support.jobs import artifact, finished, train_model
from tests.support.reports import outline


def report(client: TestClient, user: dict[str, str], model_id: str) -> dict[str, object]:
    accepted = client.post(f"/models/{model_id}/report", headers=auth(user))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["job_type"] == "report"
    return finished(client, user, accepted.json()["job_id"])


def test_reports_of_a_classifier_and_a_regressor(client: TestClient, worker: WorkerProcess) -> None:
    user = create_user(client)
    cls_data = upload(client, user, classification_frame(300)).json()["dataset_id"]
    reg_data = upload(client, user, regression_frame(200)).json()["dataset_id"]
    classifier = train_model(
        client, user, cls_data, "classification", "label", rounds=12, test_size=0.3
    )
    regressor = train_model(client, user, reg_data, "regression", "y", rounds=8)
    missing = client.get(f"/models/{classifier}/report", headers=auth(user))
    assert missing.status_code == 404 and missing.json()["error"] == "report_not_found"

    model = client.get(f"/models/{classifier}", headers=auth(user)).json()
    result = report(client, user, classifier)
    body = result["result"]
    assert isinstance(body, dict)
    assert body["plots"] == [
        "confusion-matrix",
        "roc-curve",
        "pr-curve",
        "feature-importance",
        "shap-importance",
        "training-curve",
    ]
    assert body["evaluated_rows"] == 90  # 30% of 300, the split training used
    for name, value in model["metrics"].items():  # recomputed on the same validation rows
        assert body["metrics"][name] == pytest.approx(value), name
    served = client.get(f"/models/{classifier}/report", headers=auth(user))
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/html")
    assert "script-src" not in served.headers["content-security-policy"]
    html = served.text
    assert artifact(client, user, result, "report.html").decode() == html
    parsed = outline(html)
    assert parsed.sections[:2] == ["summary", "metrics"]
    assert set(body["plots"]) <= set(parsed.sections)
    assert parsed.tags.count("svg") >= 5
    assert f"{model['metrics']['accuracy']:.6g}" in html
    assert set(body["feature_importance"]) == {"x1", "x2", "color"}
    # the SHAP summary stored at training, drawn as bars named by column, largest first
    shap = client.get(f"/models/{classifier}/importance?type=shap", headers=auth(user)).json()
    assert "Mean |SHAP contribution| over 300 training rows" in html
    section = html[html.index('id="shap-importance"') :]
    first = shap["importance"][0]["feature"]
    assert all(section.index(first) < section.index(i["feature"]) for i in shap["importance"][1:])

    reg = report(client, user, regressor)["result"]
    assert isinstance(reg, dict)
    assert reg["plots"] == ["residuals", "feature-importance", "shap-importance", "training-curve"]
    assert {"rmse", "mae", "r2"} <= set(reg["metrics"])

    # without its dataset: no data plots, and the report says so; GET serves the newest
    assert client.delete(f"/datasets/{cls_data}", headers=auth(user)).status_code == 204
    later = report(client, user, classifier)["result"]
    assert isinstance(later, dict)
    assert later["plots"] == ["feature-importance", "shap-importance", "training-curve"]
    assert later["metrics"] is None and "no longer exists" in str(later["notes"])
    newest = client.get(f"/models/{classifier}/report", headers=auth(user)).text
    assert "no longer exists" in newest and "confusion-matrix" not in outline(newest).sections

    bob = create_user(client, "bob")
    assert client.post(f"/models/{classifier}/report", headers=auth(bob)).status_code == 404
    assert client.get(f"/models/{classifier}/report", headers=auth(bob)).status_code == 404
    assert client.post("/models/nope/report", headers=auth(user)).status_code == 404
