"""The dashboard in real headless Chromium against a live server: sign in, follow a job to
its end with its curve drawn, cancel a running job, browse models and datasets, phone width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.live import FAST, long_job, single_class_frame
from tests.support import classification_frame, shap_summary, wait_for
from xgenerator.cli.demo import LocalServer
from xgenerator.client import Client

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def account(server: LocalServer) -> Iterator[tuple[Client, str]]:
    user = Client.create_user(server.url, "dana", "dana@example.com")
    with Client(server.url, user.api_key) as client:
        yield client, user.api_key


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that fails the test on any script error or
    Content-Security-Policy violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console: {message.text}")

    tab.on("console", console)
    yield tab
    context.close()
    assert not problems, problems


def sign_in(page: Page, server: LocalServer, key: str, path: str = "/ui") -> None:
    page.goto(f"{server.url}{path}")
    page.fill("#api-key", key)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#who")).to_have_text("dana")


def test_pages_send_security_headers_and_escape_ids(server: LocalServer) -> None:
    page = httpx.get(f"{server.url}/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text.split("</head>")[1]  # no inline script anywhere
    script = httpx.get(f"{server.url}/ui/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{server.url}/ui/static/..%2F..%2Fsettings.py").status_code == 404
    # Only ids of the right shape get a page: nothing else can reach the page's script,
    # neither markup nor a path that would make it call another API route.
    for hostile in ("%22%3E%3Cscript%3Ex", "..%5Cusers%5Cme%5Ckeys%3F", "A" * 32):
        response = httpx.get(f"{server.url}/ui/jobs/{hostile}")
        assert response.status_code == 404, hostile
        assert "<script>x" not in response.text
    assert httpx.get(f"{server.url}/ui/jobs/{'a' * 32}").status_code == 200


def test_sign_in_rejects_a_bad_key(
    page: Page, server: LocalServer, account: tuple[Client, str]
) -> None:
    page.goto(f"{server.url}/ui")
    page.fill("#api-key", "xg_wrong")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_have_text("That key is not valid.")
    sign_in(page, server, account[1])
    expect(page.locator("#signin")).to_be_hidden()
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()


def test_job_page_follows_a_job_to_its_end_with_its_curve(
    page: Page, server: LocalServer, account: tuple[Client, str], artifacts: Path
) -> None:
    client, key = account
    dataset = client.datasets.upload(classification_frame(400), "customers")
    job = client.train(
        dataset, "label", model_name="churn", num_boost_round=150, xgb_params={**FAST, "eta": 0.1}
    )
    sign_in(page, server, key, f"/ui/jobs/{job.id}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TIMEOUT_MS)
    # The validation metric comes every 8th round (ceil(150 / 20): eval_every's default) and
    # on the last, the training metric every 10th (eval_train_every).
    for series, points in (("train", 15), ("validation", 19)):
        curve = page.locator(f"#curve path.series.{series}")
        expect(curve).to_have_attribute("data-points", str(points))
        assert (curve.get_attribute("d") or "").count("L") == points - 1
    expect(page.locator("#progress-text")).to_contain_text("100%")
    expect(page.locator("#events")).to_contain_text("succeeded")
    expect(page.locator("#result-metrics")).to_contain_text("accuracy")
    expect(page.locator("#cancel")).to_be_hidden()
    # The SHAP summary is kept just after the success (XGEN_SHAP_SUMMARY_AFTER_SUCCESS); once
    # it is, the page lists its event after the job's three.
    shap_summary(client, job.wait().model_id or "")
    page.reload()
    expect(page.locator("#events li")).to_have_count(4)
    expect(page.locator("#events li").last).to_contain_text("shap_summary")
    page.screenshot(path=str(artifacts / "job-succeeded.png"), full_page=True)


def test_cancel_a_running_job_from_its_page(
    page: Page, server: LocalServer, account: tuple[Client, str], artifacts: Path
) -> None:
    client, key = account
    dataset = client.datasets.upload(classification_frame(300), "to-cancel")
    job = long_job(client, dataset.dataset_id)
    sign_in(page, server, key, f"/ui/jobs/{job.id}")
    expect(page.locator("#job-status")).to_have_text("running", timeout=TIMEOUT_MS)
    # the curve grows live from the stream while the job runs
    # (polled from Python: the page's CSP rightly forbids evaluating strings)
    wait_for(lambda: curve_points(page) >= 5, TIMEOUT_MS / 1000, 0.2, "the curve to grow")
    page.screenshot(path=str(artifacts / "job-running.png"), full_page=True)
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=TIMEOUT_MS)
    expect(page.locator("#events")).to_contain_text("cancel_requested")
    expect(page.locator("#cancel")).to_be_hidden()
    assert client.jobs.get(job.id).status == "cancelled"
    page.screenshot(path=str(artifacts / "job-cancelled.png"), full_page=True)


def curve_points(page: Page) -> int:
    curve = page.locator("#curve path.series.validation")
    return int(curve.get_attribute("data-points") or 0) if curve.count() else 0


def test_jobs_table_filters_and_updates_live(
    page: Page, server: LocalServer, account: tuple[Client, str]
) -> None:
    client, key = account
    doomed = client.train(
        client.datasets.upload(single_class_frame(), "one-class"),
        "label",
        model_name="doomed",
        num_boost_round=3,
    )
    sign_in(page, server, key)
    row = page.locator(f"tr[data-job-id='{doomed.id}']")
    expect(row).to_contain_text("failed", timeout=TIMEOUT_MS)
    page.select_option("#status-filter", "failed")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(1)
    assert "status=failed" in page.url
    page.select_option("#status-filter", "")
    fresh = client.train(
        client.datasets.upload(classification_frame(80), "fresh"),
        "label",
        model_name="appears-live",
        num_boost_round=5,
        xgb_params=FAST,
    )
    expect(page.locator(f"tr[data-job-id='{fresh.id}']")).to_be_visible(timeout=10_000)


def test_models_and_datasets_pages(
    page: Page, server: LocalServer, account: tuple[Client, str], tmp_path: Path, artifacts: Path
) -> None:
    client, key = account
    dataset = client.datasets.upload(classification_frame(150), "browse-me")
    info = client.train(
        dataset, "label", model_name="browsable", num_boost_round=20, xgb_params=FAST
    ).wait(timeout=120, progress=False)
    sign_in(page, server, key, "/ui/models")
    page.click("text=browsable")
    expect(page.locator("#model-title")).to_have_text("browsable")
    expect(page.locator("#model-metrics")).to_contain_text("roc_auc")
    expect(page.locator("#model-features tbody tr")).to_have_count(3)
    expect(page.locator("#curve path.series.validation")).to_have_attribute("data-points", "20")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "model.ubj"
    download.value.save_as(saved)
    assert saved.stat().st_size > 0 and (info.model_id or "?") in download.value.suggested_filename
    expect(page.locator("#report button")).to_have_text("Create a report")
    page.screenshot(path=str(artifacts / "model-page.png"), full_page=True)

    page.click("nav >> text=Datasets")
    page.click("text=browse-me")
    expect(page.locator("#dataset-title")).to_have_text("browse-me")
    expect(page.locator("#dataset-schema tbody tr")).to_have_count(4)
    expect(page.locator("#dataset-schema")).to_contain_text("categorical")


def test_usable_at_phone_width(
    browser: Browser, server: LocalServer, account: tuple[Client, str], artifacts: Path
) -> None:
    client, key = account
    job = client.jobs.list(status="succeeded")[0]
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        tab = context.new_page()
        sign_in(tab, server, key, f"/ui/jobs/{job.id}")
        expect(tab.locator("#job-status")).to_have_text("succeeded")
        expect(tab.locator("#curve path.series.validation")).to_be_visible()
        pages = {
            "job": f"/ui/jobs/{job.id}",
            "jobs": "/ui",
            "models": "/ui/models",
            "datasets": "/ui/datasets",
        }
        for name, path in pages.items():
            tab.goto(f"{server.url}{path}")
            tab.wait_for_load_state("networkidle")
            overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (path, overflow)
            tab.screenshot(path=str(artifacts / f"phone-{name}.png"), full_page=True)
    finally:
        context.close()
